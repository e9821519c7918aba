#!/usr/bin/env bash
# Issue 26's done-when configuration: flags/mnist_5k.cfg (15 epochs) on three seeds, the default
# and a lever side by side (docs/RESULTS.md, "Levers"). The default of a seed runs first and
# its warm start is copied to the lever's run (docs/runs.sh: seeded, CACHE_FROM=default), so the
# two differ only by the lever. One TensorFlow thread a lane; start one lane a free core:
#   LEVER_NAME=cover_1 LEVER="--coverage_weight=1" docs/run_m5k_seeds.sh [LANES]
# BASE adds flags to the default's runs alone: the tables made before the flagfile turned on
# --coverage_weight=1 (docs/RESULTS.md) ran its default with BASE=--coverage_weight=0.
# About 20-30 minutes a run with two lanes on this machine's 2 cores.
# Then: .venv/bin/python docs/seed_table.py runs/m5k/default_s6 runs/m5k/default_s7 ...
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/m5k}
SEEDS=${SEEDS:-6 7 8}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2 CACHE_FROM=default

source docs/runs.sh  # seeded

F="--flagfile=flags/mnist_5k.cfg --eval_every=5"
lane() {
  for seed in $SEEDS; do seeded "default_s$seed" "$seed" $F ${BASE:-}; done
  [ -n "${LEVER_NAME:-}" ] || return 0
  for seed in $SEEDS; do seeded "${LEVER_NAME}_s$seed" "$seed" $F ${LEVER:-}; done
}

for i in $(seq "${1:-2}"); do
  lane > "$OUT/lane_$i.$$.out" 2>&1 &
  sleep 5
done
wait
