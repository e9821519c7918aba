"""Tables and figures of docs/RESULTS.md §2-§5 from trained run directories.

Reads `<runs>/<name>/metrics.json` (the final evaluation of each run) and the per-epoch
`eval/*` scalars in `<runs>/<name>/tensorboard/eval`; the run names are those of
docs/run_experiments.sh. Prints Markdown tables and writes docs/figures/quality_over_epochs.png,
compression.png and imbalanced_shares.png. Missing runs are left out of the tables.

    .venv/bin/python docs/make_report.py runs/s3
"""
from __future__ import annotations

import glob
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gmmgan_tf import evaluation  # noqa: E402
from gmmgan_tf import workdir as wd  # noqa: E402
from gmmgan_tf.gan import GMMGAN  # noqa: E402
from gmmgan_tf.metrics import clustering, report  # noqa: E402
from gmmgan_tf.metrics.domain_classifier import load_or_train  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
QUALITY_RUNS = (("gaussian_s0", "gaussian (vanilla DCGAN)"),
                ("gaussian_div03_s0", "gaussian, diversity 0.3"), ("gmm_s0", "gmm, diversity 0.3"),
                ("default_s0", "gmmgan (the default)"),
                ("shared_s0", "gmmgan --shared_encoder"))
SEEDS = tuple((f"default_s{seed}", f"default, seed {seed}") for seed in range(3))
ABLATIONS = (("default_s0", "default (diversity 0.3, mi+xent, paired_mi, separate encoders, K=10)"),
             ("div_0_s0", "`--diversity_weight=0`"), ("div_0.1_s0", "`--diversity_weight=0.1`"),
             ("div_1_s0", "`--diversity_weight=1`"),
             ("cons_mi_s0", "`--consistency=mi`"), ("cons_xent_s0", "`--consistency=xent`"),
             ("rf_marginal_s0", "`--real_fake_consistency=marginal_kl`"),
             ("rf_none_s0", "`--real_fake_consistency=none`"),
             ("shared_s0", "`--shared_encoder`"), ("k5_s0", "`--num_components=5`"))
COMPRESSION = (("gaussian_s0", "gaussian, width 1"),
               ("gaussian_div03_s0", "gaussian, width 1, diversity 0.3"),
               ("default_s0", "gmmgan, width 1"),
               ("width_0.75_s0", "gmmgan, width 0.75"), ("width_0.5_s0", "gmmgan, width 0.5"),
               ("width_0.35_s0", "gmmgan, width 0.35"))
IMBALANCED_MODELS = (("gaussian", "gaussian"), ("gmm", "gmm"), ("gmmgan", "gmmgan"))
DOMINANT_CLASSES = (0, 3, 7)


def load_metrics(runs: str, name: str, reevaluated: bool = False) -> dict | None:
    """A run's final metrics (with `reevaluated`, updated by its re-evaluation if it has one:
    `main.py --mode=evaluate` writes <run>/eval/metrics.json); component purity is added for
    runs trained before evaluation reported it (the same computation on 200 samples a
    component)."""
    path = os.path.join(runs, name, "metrics.json")
    if not os.path.isfile(path):
        return None
    metrics = json.load(open(path))
    again = os.path.join(runs, name, "eval", "metrics.json")
    if reevaluated and os.path.isfile(again):
        metrics.update(json.load(open(again)))
    if metrics["model"] != "gaussian" and "component_purity" not in metrics:
        config, data, model = wd.load_trained_model(os.path.join(runs, name))
        balanced = evaluation.classifier_data(data, config)
        classifier = load_or_train(report.default_cache_dir(), balanced.name,
                                   balanced.train_images, balanced.train_labels,
                                   data.test_images, data.test_labels, data.num_classes)
        fakes, components = model.sample(200, seed=config.seed)
        classes = classifier.features_and_probabilities(fakes)[1].argmax(axis=1)
        purity = clustering.component_purity(components, classes, data.num_classes)
        metrics.update({f"component_{k}": v for k, v in purity.items()})
    return metrics


def eval_curves(runs: str, name: str) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch `validation/<metric>` scalars of a run (`eval/<metric>` in runs made before the
    validation split, which scored the test split every epoch): {metric: [(epoch, value)]}."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(glob.glob(os.path.join(runs, name, "tensorboard", "eval", "events.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                prefix, _, metric = value.tag.partition("/")
                if prefix in ("validation", "eval"):
                    curves.setdefault(metric, []).append(
                        (int(event.step), float(tf.make_ndarray(value.tensor))))
    return {k: sorted(dict(v).items()) for k, v in curves.items()}


def parameter_counts(runs: str, name: str) -> dict[str, int]:
    """Weights of G, D and the PCM of a run, built from its saved config."""
    config = wd.load_config(os.path.join(runs, name))
    model = GMMGAN(config, (28, 28, 1))
    counts = {"G": model.generator.count_params(), "D": model.discriminator.count_params()}
    counts["C"] = model.pcm.count_params() if model.pcm is not None else 0
    return counts


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def quality_section(runs: str) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    rows = []
    for name, label in QUALITY_RUNS:
        m = load_metrics(runs, name)
        if m is None:
            continue
        curves = eval_curves(runs, name)
        for ax, key in zip(axes, ("domain_is", "domain_fid", "ndb_over_k")):
            if key in curves:
                epochs, values = zip(*curves[key])
                ax.plot(epochs, values, marker="o", label=label)
                ax.set(title=key, xlabel="epoch")
        rows.append([label] + [fmt(m.get(k)) for k in (
            "ndb_over_k", "ndb_js", "domain_is", "domain_fid", "coverage_classes", "coverage_kl",
            "pcm_acc", "agreement_identity", "diversity_ratio_min", "component_purity")])
    axes[0].legend(fontsize=8)
    _save(fig, "quality_over_epochs.png")
    return table(["run", "NDB/K", "NDB JS", "domain IS", "domain FID", "classes covered",
                  "class KL", "PCM ACC", "agreement", "diversity min", "component purity"],
                 rows)


def seeds_section(runs: str) -> str:
    keys = ("pcm_acc", "pcm_nmi", "pcm_ari", "agreement_identity", "pcm_clusters_used",
            "diversity_ratio_min", "component_purity", "component_classes_generated",
            "ndb_over_k", "domain_fid")
    rows, groups = [], {}
    for name, label in SEEDS:
        m = load_metrics(runs, name)
        if m is not None:
            rows.append([label] + [fmt(m.get(k)) for k in keys])
            groups.setdefault(label.split(",")[0], []).append(m)
    for group, found in groups.items():
        if len(found) > 1:
            rows.append([f"{group}: mean ± std of {len(found)}"] + [
                f"{np.mean([m[k] for m in found]):.3f} ± "
                f"{np.std([m[k] for m in found], ddof=1):.3f}" for k in keys])
    return table(["run"] + list(keys), rows)


def ablation_section(runs: str) -> str:
    rows = []
    for name, label in ABLATIONS:
        m = load_metrics(runs, name)
        if m is not None:
            rows.append([label] + [fmt(m.get(k)) for k in (
                "pcm_acc", "pcm_nmi", "pcm_ari", "agreement_identity", "pcm_clusters_used",
                "diversity_ratio_min", "component_purity", "component_classes_generated",
                "domain_fid", "ndb_over_k")])
    return table(["variant", "ACC", "NMI", "ARI", "agreement", "clusters used",
                  "diversity min", "purity", "classes generated", "domain FID", "NDB/K"], rows)


def compression_section(runs: str) -> str:
    rows, points = [], []
    for name, label in COMPRESSION:
        m = load_metrics(runs, name)
        if m is None:
            continue
        counts = parameter_counts(runs, name)
        gen_side = counts["G"] + counts["D"]
        rows.append([label, f"{counts['G']:,}", f"{counts['D']:,}", f"{counts['C']:,}",
                     f"{gen_side + counts['C']:,}", fmt(m.get("domain_fid")),
                     fmt(m.get("domain_is")), fmt(m.get("ndb_over_k")), fmt(m.get("pcm_acc"))])
        points.append((label, counts["G"], m.get("domain_fid"), m.get("domain_is")))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, params, fid_value, is_value in points:
        marker = "s" if label.startswith("gaussian") else "o"
        axes[0].scatter(params, fid_value, marker=marker, label=label)
        axes[1].scatter(params, is_value, marker=marker)
    axes[0].set(xscale="log", xlabel="generator parameters", ylabel="domain FID (lower is better)")
    axes[1].set(xscale="log", xlabel="generator parameters", ylabel="domain IS (higher is better)")
    axes[0].legend(fontsize=7)
    _save(fig, "compression.png")
    return table(["run", "G params", "D params", "PCM params", "total", "domain FID",
                  "domain IS", "NDB/K", "PCM ACC"], rows)


def imbalanced_section(runs: str) -> str:
    rows = []
    fig, axes = plt.subplots(1, len(DOMINANT_CLASSES), figsize=(4.5 * len(DOMINANT_CLASSES), 3.4),
                             squeeze=False)
    for ax, d in zip(axes[0], DOMINANT_CLASSES):
        train_shares = None
        width = 0.8 / (len(IMBALANCED_MODELS) + 1)
        for i, (suffix, label) in enumerate(IMBALANCED_MODELS):
            name = f"imb{d}_{suffix}_s0"
            # gmmgan's sample metrics are read from its re-evaluation, which draws components by
            # alpha_k (model.sample_from_prior); its training-time metrics drew them equally.
            m = load_metrics(runs, name, reevaluated=suffix == "gmmgan")
            if m is None:
                continue
            shares = np.asarray(m["coverage_shares"])
            if train_shares is None:
                train_shares = _training_shares(runs, name)
                ax.bar(np.arange(10) - 0.4, train_shares, width, color="grey",
                       label="training", align="edge")
            ax.bar(np.arange(10) - 0.4 + (i + 1) * width, shares, width, label=label,
                   align="edge")
            rows.append([str(d), label, fmt(m.get("coverage_classes")),
                         f"{shares[d]:.2f} ({train_shares[d]:.2f})",
                         f"{shares[np.arange(10) != d].min():.3f}",
                         fmt(m.get("coverage_kl")), fmt(m.get("domain_fid")),
                         fmt(m.get("ndb_over_k")), fmt(m.get("pcm_acc"))])
        ax.axhline(1 / 40, color="k", lw=0.6, ls="--")
        ax.set(title=f"dominant digit {d}", xlabel="class (domain classifier)",
               ylabel="share of samples", xticks=range(10))
    if rows:
        axes[0][0].legend(fontsize=7)
    _save(fig, "imbalanced_shares.png")
    return table(["dominant d", "model", "classes covered (of 10)", "share of d (training)",
                  "smallest minor share", "class KL", "domain FID", "NDB/K", "PCM ACC"], rows)


def _training_shares(runs: str, name: str) -> np.ndarray:
    """Class shares of the run's (imbalanced) training images, from its startup log line."""
    for line in open(os.path.join(runs, f"{name}.log")):
        if "training class counts" in line:
            counts = np.array(json.loads(line.split("training class counts")[1].strip()))
            return counts / counts.sum()
    raise ValueError(f"{name}.log has no 'training class counts' line")


def _save(fig, filename: str) -> None:
    fig.tight_layout()
    fig.savefig(FIGURES / filename, dpi=100)
    plt.close(fig)
    print(f"wrote docs/figures/{filename}", file=sys.stderr)


def main(runs: str) -> None:
    for title, section in (("Quality (§2)", quality_section), ("Seeds", seeds_section),
                           ("Ablations (§5)", ablation_section),
                           ("Compression (§3)", compression_section),
                           ("Imbalanced (§4)", imbalanced_section)):
        print(f"\n### {title}\n\n{section(runs)}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: docs/make_report.py <directory of run directories, e.g. runs/s3>")
    main(sys.argv[1])
