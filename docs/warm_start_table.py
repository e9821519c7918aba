"""Tables of docs/RESULTS.md §6 from the runs of docs/run_warm_start_study.sh.

    .venv/bin/python docs/warm_start_table.py runs/ws

Each row is the mean ± standard deviation (ddof 1) over the seeds present, with the seed count.
"""
from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

COLUMNS = (("ACC", "pcm_acc"), ("NMI", "pcm_nmi"), ("ARI", "pcm_ari"),
           ("agreement", "agreement_identity"), ("purity", "component_purity"),
           ("diversity (min)", "diversity_ratio_min"), ("domain FID", "domain_fid"))
CLUSTERING = {"pcm_acc", "pcm_nmi", "pcm_ari"}
DIGITS = {"domain_fid": 1, "pcm_clusters_used": 0}
# (label, run-name prefix, metric-name prefix): the first two rows read the records of the
# stages before the GAN, which the mnist_5k.cfg runs (m5k_s<seed>) computed themselves (the
# stage runs reuse their cached warm start; the pre-training is the same in both recipes).
STAGES = (("warm start alone (GMM on UMAP-transformed held-out images)", "m5k", "warm_start_"),
          ("+ PCM pre-trained on its responsibilities", "m5k", "pretrained_pcm_"),
          ("+ GAN training, no real-image term", "noreal", "pcm_"),
          ("+ L^{x,warm} (the warm start's responsibilities)", "pseudo", "pcm_"),
          ("+ L^{x,self} (self-labelling): **the default**", "quick", "pcm_"),
          ("control: both real-image terms, no GAN gradient", "ctrl", "pcm_"))


def runs_of(root: str, prefix: str) -> list[dict]:
    return [run for _, run in named_runs(root, prefix)]


def named_runs(root: str, prefix: str) -> list[tuple[str, dict]]:
    found = []
    for file in sorted(glob.glob(os.path.join(root, f"{prefix}*", "metrics.json"))):
        with open(file) as f:
            found.append((os.path.basename(os.path.dirname(file)), json.load(f)))
    return found


def cell(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def value(run: dict, metric_prefix: str, key: str):
    if key.startswith("pcm_"):
        return run.get(metric_prefix + key[len("pcm_"):])
    return run.get(key) if metric_prefix == "pcm_" else None


def stage_table(root: str) -> str:
    lines = ["| stage (mnist_5k, 5 epochs) | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for label, run_prefix, metric_prefix in STAGES:
        runs = runs_of(root, run_prefix)
        # The control's generator is never trained: only its clustering columns mean anything.
        shown = CLUSTERING if run_prefix == "ctrl" else {key for _, key in COLUMNS}
        cells = [cell([value(r, metric_prefix, key) for r in runs], DIGITS.get(key, 3))
                 if key in shown else "–" for _, key in COLUMNS]
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def acceptance_table(root: str, prefix: str) -> str:
    named = named_runs(root, prefix)
    runs = [run for _, run in named]
    keys = [k for _, k in COLUMNS] + ["pcm_clusters_used", "warm_start_acc", "pretrained_pcm_acc"]
    lines = ["| seed | " + " | ".join(keys) + " | minutes (warm start + training + evaluation) |",
             "|---" * (len(keys) + 2) + "|"]
    for name, run in named:
        minutes = (sum(v for k, v in run.items() if k.startswith("warm_start_")
                       and k.endswith("_seconds")) + run.get("pretrain_seconds", 0)
                   + run.get("train_seconds_this_session", 0)) / 60
        lines.append(f"| {name} | " + " | ".join(
            cell([run.get(k)], DIGITS.get(k, 3)) for k in keys) + f" | {minutes:.1f} |")
    lines.append("| mean ± sd | " + " | ".join(cell([r.get(k) for r in runs], DIGITS.get(k, 3))
                                              for k in keys)
                 + " | |")
    return "\n".join(lines)


def main(root: str) -> None:
    print(stage_table(root))
    print()
    for prefix in ("m5k", "fashion"):
        if runs_of(root, prefix):
            print(f"{prefix}:")
            print(acceptance_table(root, prefix))
            print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/ws")
