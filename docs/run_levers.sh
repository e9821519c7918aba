#!/usr/bin/env bash
# Issue 26's levers against the default, each over the choice seeds 0, 1, 2 (docs/RESULTS.md,
# "Levers"): flags/quick.cfg (5 epochs), the validation split scored at the end, the final
# sample metrics on 20,000 samples. Every lane walks the same list and takes the runs no other
# lane holds (docs/runs.sh: seeded), so start one lane a free core: docs/run_levers.sh [LANES].
# One TensorFlow thread a lane; a lever's run copies the warm-start cache of the seed's default
# run (CACHE_FROM=base). About 15-20 CPU-minutes a run on this machine.
# Then: .venv/bin/python docs/lever_table.py runs/levers
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/levers}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
export TF_CPP_MIN_LOG_LEVEL=2 CACHE_FROM=base

source docs/runs.sh  # seeded

Q="--flagfile=flags/quick.cfg --eval_every=5 --diversity_weight=0.1"  # the default until 2026-12-07
lane() {  # the default first: its warm starts are the other runs' caches
  for seed in 0 1 2; do seeded "base_s$seed" "$seed" $Q; done
  for seed in 0 1 2; do
    seeded "diffaug_s$seed" "$seed" $Q --diff_augment=color,translation,cutout
  done
  for seed in 0 1 2; do seeded "r1_s$seed" "$seed" $Q --r1_weight=1; done
  for seed in 0 1 2; do seeded "div03_s$seed" "$seed" $Q --diversity_weight=0.3; done
  for seed in 0 1 2; do  # SAGAN's two time scales (Zhang et al. 2019)
    seeded "ttur_s$seed" "$seed" $Q --learning_rate_d=4e-4 --learning_rate_g=1e-4
  done
  for seed in 0 1 2; do  # diversity 0.3 with G held to its component by L^{x^,z}
    seeded "div03gc_s$seed" "$seed" $Q --diversity_weight=0.3 --generator_consistency
  done
  for seed in 0 1 2; do seeded "r1div03_s$seed" "$seed" $Q --r1_weight=1 --diversity_weight=0.3; done
  for seed in 0 1 2; do seeded "b64_s$seed" "$seed" $Q --batch_size=64; done  # 6.4 reals a head
  for seed in 0 1 2; do seeded "div06_s$seed" "$seed" $Q --diversity_weight=0.6; done
  for seed in 0 1 2; do  # Che et al.'s mode regulariser on top of diversity 0.3
    seeded "rec1div03_s$seed" "$seed" $Q --diversity_weight=0.3 --reconstruction_weight=1
  done
}

for _ in $(seq "${1:-2}"); do lane & sleep 2; done
wait
