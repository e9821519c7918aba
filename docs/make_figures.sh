#!/usr/bin/env bash
# Regenerates docs/figures/ from trained run directories (the commands in docs/RESULTS.md make
# them): per-component samples, 2- and 3-way interpolations, evaluation plots.
# Usage: docs/make_figures.sh runs/quick runs/fashion_mnist ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for run in "$@"; do
  name=$(basename "$run")
  $PY main.py --mode=interpolate --workdir="$run" >/dev/null
  cp "$run/samples.png" "docs/figures/${name}_samples.png"
  cp "$run/samples/interpolate_2way.png" "docs/figures/${name}_interpolate_2way.png"
  cp "$run/samples/interpolate_3way.png" "docs/figures/${name}_interpolate_3way.png"
  for plot in ndb_bins class_histogram; do
    [ -f "$run/eval/$plot.png" ] && cp "$run/eval/$plot.png" "docs/figures/${name}_$plot.png"
  done
  echo "figures of $run -> docs/figures/${name}_*.png"
done
