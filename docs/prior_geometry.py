"""The learned prior's geometry after training (docs/RESULTS.md, "Levers"): does a component
shrink onto one style, or do components crowd each other?

For each run: the mean over components and dimensions of sigma_k (initialised at 0.5, floor
0.05) with its range, the typical radius of a component's samples sqrt(d) * mean sigma_k, and
the distance from each mean to its nearest other mean (median over components, and the
minimum). A radius far below the nearest-mean distance means components do not overlap; a
sigma near the floor would mean a component collapsed onto a point.

    PYTHONPATH=. .venv/bin/python docs/prior_geometry.py runs/levers/base_s0 runs/levers/div03_s0
"""
from __future__ import annotations

import sys

import numpy as np

from gmmgan_tf.workdir import load_trained_model


def geometry(means: np.ndarray, scales: np.ndarray) -> dict[str, float]:
    """Summary of a diagonal mixture's means [K, d] and scales [K, d]."""
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)
    np.fill_diagonal(gaps, np.inf)
    nearest = gaps.min(axis=1)
    return {"sigma_mean": float(scales.mean()), "sigma_min": float(scales.min()),
            "sigma_max": float(scales.max()),
            "radius": float(np.sqrt(means.shape[1]) * scales.mean()),
            "nearest_mean_median": float(np.median(nearest)),
            "nearest_mean_min": float(nearest.min())}


def main(workdirs: list[str]) -> None:
    print("| run | sigma mean (min–max) | radius sqrt(d)·sigma "
          "| nearest other mean: median (min) |")
    print("|---|---|---|---|")
    for workdir in workdirs:
        _, _, model = load_trained_model(workdir)
        g = geometry(np.asarray(model.prior.means), np.asarray(model.prior.scales()))
        print(f"| {workdir} | {g['sigma_mean']:.3f} ({g['sigma_min']:.2f}–{g['sigma_max']:.2f}) "
              f"| {g['radius']:.2f} "
              f"| {g['nearest_mean_median']:.2f} ({g['nearest_mean_min']:.2f}) |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/prior_geometry.py <workdir> [<workdir> ...]")
    main(sys.argv[1:])
