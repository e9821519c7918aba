"""PNG plots and a Markdown table of `evaluate_samples` results, one run or several.

- `plot_ndb_bins`: training bin shares with +-1 pooled standard error (grey bars, as in the
  authors' plot) and each run's shares; bins the test marks as different are starred.
- `plot_ndb_bins_by_component`: one run's bins, the training share beside the samples' share
  stacked by generating component; different bins marked over- or under-generated.
- `plot_class_histogram`: each run's generated class shares (domain classifier) against the
  training class distribution, with the 1/(4 C) coverage threshold.
- `plot_novelty_roc`: ROC curves of the novelty scorers (`novelty_roc_<scorer>` entries).
- `compare_table`: one row per run, one column per scalar metric.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Column order of the comparison table (other scalar keys follow, sorted); lower/higher better.
TABLE_COLUMNS = (
    ("ndb_over_k", "NDB/K", "lower"), ("ndb_js", "NDB JS", "lower"),
    ("domain_is", "domain IS", "higher"), ("domain_fid", "domain FID", "lower"),
    ("domain_kid", "domain KID", "lower"), ("inception_is", "Inception IS", "higher"),
    ("inception_fid", "Inception FID", "lower"), ("coverage_classes", "classes covered", "higher"),
    ("coverage_kl", "class KL", "lower"), ("sharpness", "sharpness", "higher"),
    ("pcm_acc", "PCM ACC", "higher"), ("pcm_nmi", "PCM NMI", "higher"),
    ("pcm_ari", "PCM ARI", "higher"), ("agreement_identity", "agreement", "higher"),
)


def plot_ndb_bins(runs: list[tuple[str, dict]], path: str) -> None:
    """Bin shares of every run against the training shares (needs the NDB entries)."""
    runs = [(name, m) for name, m in runs if "ndb_proportions" in m]
    if not runs:
        raise ValueError("no run has NDB results (ndb_proportions); evaluate with NDB bins")
    train = np.asarray(runs[0][1]["ndb_train_proportions"])
    k = len(train)
    n_train, n_query = runs[0][1]["ndb_train_samples"], runs[0][1]["ndb_samples"]
    pooled_se = np.sqrt(train * (1 - train) * (1.0 / n_train + 1.0 / n_query))
    fig, ax = plt.subplots(figsize=(max(8, k / 8), 4))
    ax.bar(np.arange(k), 2 * pooled_se, bottom=train - pooled_se, width=1.0, color="0.8",
           label="train ± SE")
    for name, m in runs:
        q, diff = np.asarray(m["ndb_proportions"]), np.asarray(m["ndb_different"], bool)
        line, = ax.plot(np.arange(k), q, "-", lw=1,
                        label=f"{name} (NDB/K {m['ndb_over_k']:.2f}, JS {m['ndb_js']:.3f})")
        ax.plot(np.flatnonzero(diff), q[diff], "*", color=line.get_color(), ms=6)
    ax.set(xlabel="bin (sorted by training share)", ylabel="share of samples",
           title=f"NDB bin proportions, K = {k} (* = significantly different)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_ndb_bins_by_component(name: str, metrics: dict, path: str) -> None:
    """Per NDB bin, in NDB's order (decreasing training share), the training share (black) beside
    the samples' share stacked by the component that made them (needs
    `ndb_component_proportions`); a bin the test marks as different gets a red ^ when the
    samples over-fill it, a blue v when they under-fill it. Components are labelled with their
    matched class and alpha_k when the metrics have them."""
    if "ndb_component_proportions" not in metrics:
        raise ValueError("no per-component NDB results (ndb_component_proportions); evaluate a "
                         "mixture-prior model with NDB bins")
    shares = np.asarray(metrics["ndb_component_proportions"])  # [bins, components]
    train = np.asarray(metrics["ndb_train_proportions"])
    diff = np.asarray(metrics["ndb_different"], bool)
    k, c = shares.shape
    x = np.arange(k)
    fig, ax = plt.subplots(figsize=(max(10, k / 5), 4.5))
    ax.bar(x - 0.2, train, width=0.4, color="k", label="train")  # tab10 has a grey
    cmap = plt.get_cmap("tab10" if c <= 10 else "tab20")
    matched, alpha = metrics.get("component_matched_class"), metrics.get("component_alpha")
    bottom = np.zeros(k)
    for j in range(c):
        label = f"component {j}"
        if matched is not None and matched[j] >= 0:
            label += f", class {matched[j]}"
        if alpha is not None:
            label += f", α {alpha[j]:.3f}"
        ax.bar(x + 0.2, shares[:, j], width=0.4, bottom=bottom, color=cmap(j % cmap.N),
               label=label)
        bottom += shares[:, j]
    top = np.maximum(train, bottom) + 0.02 * max(train.max(), bottom.max())
    for mask, marker, colour, word in ((diff & (bottom > train), "^", "red", "over"),
                                       (diff & (bottom < train), "v", "blue", "under")):
        ax.plot(x[mask], top[mask], marker, color=colour, ms=5,
                label=f"{word}-generated ({mask.sum()} bins)")
    ax.set(xlabel="NDB bin (sorted by training share)", ylabel="share of images",
           xlim=(-0.7, k - 0.3),
           title=f"{name}: NDB bins by component (NDB/K {metrics['ndb_over_k']:.2f}; "
                 "markers: significantly different bins)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def plot_class_histogram(runs: list[tuple[str, dict]], path: str,
                         training_distribution: np.ndarray | None = None) -> None:
    """Generated class shares per run (needs the coverage entries)."""
    runs = [(name, m) for name, m in runs if "coverage_shares" in m]
    if not runs:
        raise ValueError("no run has coverage results (coverage_shares); evaluate with a domain "
                         "classifier")
    c = len(runs[0][1]["coverage_shares"])
    width = 0.8 / (len(runs) + (training_distribution is not None))
    fig, ax = plt.subplots(figsize=(max(6, c * 0.6), 4))
    bars = [(f"{n} ({m['coverage_classes']}/{c} classes)", m["coverage_shares"]) for n, m in runs]
    if training_distribution is not None:
        bars.insert(0, ("train", training_distribution))
    for i, (label, shares) in enumerate(bars):
        ax.bar(np.arange(c) + i * width, shares, width=width, label=label)
    ax.axhline(1.0 / (4 * c), color="k", ls="--", lw=0.8, label="coverage threshold 1/(4C)")
    ax.set(xlabel="class (domain classifier)", ylabel="share of generated images",
           title="Class histogram of generated images", xticks=np.arange(c) + 0.4 - width / 2,
           xticklabels=[str(i) for i in range(c)])
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_novelty_roc(runs: list[tuple[str, dict]], path: str) -> None:
    """ROC curve of every novelty scorer of every run (needs `novelty_roc_*` entries)."""
    prefix = "novelty_roc_"
    curves = [(name, key[len(prefix):], m[key], m[f"novelty_auroc_{key[len(prefix):]}"])
              for name, m in runs for key in sorted(m) if key.startswith(prefix)]
    if not curves:
        raise ValueError("no run has novelty results (novelty_roc_*); evaluate a run trained "
                         "with --exclude_classes")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="0.7", ls="--", lw=0.8, label="chance (AUROC 0.5)")
    for run, scorer, (fpr, tpr), auroc in curves:
        label = f"{scorer} ({auroc:.3f})" if len(runs) == 1 else f"{run}: {scorer} ({auroc:.3f})"
        ax.plot(fpr, tpr, lw=1.2, label=label)
    ax.set(xlabel="false positive rate (trained classes)",
           ylabel="true positive rate (excluded classes)", xlim=(0, 1), ylim=(0, 1.01),
           title="Novelty detection, held-out images (AUROC)")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def compare_table(runs: list[tuple[str, dict]]) -> str:
    """Markdown table, one row per run; the best value of each known column in bold."""
    keys = {k for _, m in runs for k, v in m.items() if np.ndim(v) == 0}
    known = [(k, title, better) for k, title, better in TABLE_COLUMNS if k in keys]
    extra = sorted(keys - {k for k, _, _ in TABLE_COLUMNS})
    columns = known + [(k, k, None) for k in extra]
    best = {}
    for k, _, better in known:
        values = [m[k] for _, m in runs if k in m]
        best[k] = (min if better == "lower" else max)(values)
    lines = ["| run | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, m in runs:
        cells = []
        for k, _, _ in columns:
            cell = "–" if k not in m else _format(m[k])
            cells.append(f"**{cell}**" if k in best and k in m and m[k] == best[k]
                         and len(runs) > 1 else cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _format(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    value = float(value)
    return f"{value:.3f}" if value == 0 or 0.01 <= abs(value) < 100 else f"{value:.3g}"


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
