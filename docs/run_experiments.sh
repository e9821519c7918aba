#!/usr/bin/env bash
# The runs behind docs/RESULTS.md §2-§5 with the default recipe (the real-data warm start of
# issue 14): mnist_5k, flags/quick.cfg (5 epochs, 625 steps) unless named, seed 0 unless named.
# Every lane walks the same list and takes the runs no other lane holds (docs/runs.sh: seeded),
# so start as many lanes as there are free cores, now or later: docs/run_experiments.sh [LANES].
# One TensorFlow thread a lane. A finished run (metrics.json) is skipped, so it resumes (after
# an interruption remove the stale $OUT/*.lock directories first).
# A gmmgan run copies the warm-start cache of the seed's default run (CACHE_FROM=default).
# Then: .venv/bin/python docs/make_report.py runs/s3 (and docs/MFA.md's DCGAN / WGAN-GP rows).
# About 4 CPU-hours in all: 2 hours on this machine's 2 cores with two lanes (2026-12-07).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/s3}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2 CACHE_FROM=default

source docs/runs.sh  # run, seeded

ndb_bins() {  # ndb_bins <name> <bins>: re-evaluates a run's NDB/K with other bins (docs/MFA.md)
  [ -f "$OUT/$1/metrics.json" ] && [ ! -f "$OUT/$1/eval/metrics_ndb$2.json" ] || return 0
  mkdir "$OUT/$1_ndb$2.lock" 2>/dev/null || return 0
  .venv/bin/python main.py --mode=evaluate --workdir="$OUT/$1" --ndb_bins="$2" \
    > "$OUT/$1_ndb$2.log" 2>&1 && cp "$OUT/$1/eval/metrics.json" "$OUT/$1/eval/metrics_ndb$2.json"
  rmdir "$OUT/$1_ndb$2.lock"
}

Q=--flagfile=flags/quick.cfg
IMB=--flagfile=flags/imbalanced_mnist_5k.cfg
DCGAN="--model=gaussian --diversity_weight=0"

lane() {  # the runs the default's weights change first, table by table
  for seed in 0 1 2; do seeded "default_s$seed" "$seed" $Q; done                   # §5 seeds
  for seed in 0 1 2; do seeded "div_0.1_s$seed" "$seed" $Q --diversity_weight=0.1; done  # the old default
  seeded gaussian_div03_s0 0 $Q --model=gaussian          # §2: a DCGAN with the mode-seeking term
  seeded gmm_s0 0 $Q --model=gmm                          # learned GMM prior, no PCM
  seeded shared_s0 0 $Q --shared_encoder
  seeded gaussian_s0 0 $Q $DCGAN                          # the vanilla DCGAN of §2 and §3
  for seed in 0 1 2; do seeded "pl_0.1_s$seed" "$seed" $Q --pseudo_label_weight=0.1; done  # §5
  for width in 0.75 0.5 0.35; do seeded "width_${width}_s0" 0 $Q --width_multiplier=$width; done
  seeded div_0_s0 0 $Q --diversity_weight=0                                          # §5
  seeded div_1_s0 0 $Q --diversity_weight=1
  seeded cons_xent_s0 0 $Q --consistency=xent
  seeded rf_none_s0 0 $Q --real_fake_consistency=none
  seeded cons_mi_s0 0 $Q --consistency=mi
  seeded rf_marginal_s0 0 $Q --real_fake_consistency=marginal_kl
  seeded k5_s0 0 $Q --num_components=5
  for d in 0 3 7; do seeded "imb${d}_gmmgan_s0" 0 $IMB --dominant_class=$d; done     # §4
  for d in 0 3 7; do seeded "imb${d}_gmm_s0" 0 $IMB --dominant_class=$d --model=gmm; done
  for d in 0 3 7; do seeded "imb${d}_gaussian_s0" 0 $IMB --dominant_class=$d $DCGAN; done
  seeded wgan_gp_s0 0 $Q --model=gaussian --gan_loss=wgan_gp --diversity_weight=0   # MFA.md
  for bins in 200 300; do ndb_bins gaussian_s0 $bins; ndb_bins wgan_gp_s0 $bins; done
  for weight in 1 0.3; do  # issue 26: the nearest-fake coverage term against default_s0..2
    for seed in 0 1 2; do seeded "cover_${weight}_s$seed" "$seed" $Q --coverage_weight=$weight; done
  done
  for seed in 0 1 2; do  # only the real images the PCM is sure of pull
    seeded "cover_1_t95_s$seed" "$seed" $Q --coverage_weight=1 --coverage_threshold=0.95
  done
}

for i in $(seq "${1:-2}"); do
  lane > "$OUT/lane_$i.$$.out" 2>&1 &
  sleep 5
done
wait
