#!/usr/bin/env bash
# The runs behind docs/RESULTS.md §6 (what each stage of the real-data warm start contributes,
# over seeds) and the issue-14 acceptance runs, in three lanes of one TensorFlow thread each.
# A run whose metrics.json exists is skipped, so the script resumes after an interruption.
# Then: .venv/bin/python docs/warm_start_table.py runs/ws
# The full Fashion-MNIST run is separate (about 45 minutes of one core):
#   .venv/bin/python main.py --flagfile=flags/fashion_mnist.cfg --workdir=runs/ws/fashion
# A stage run copies the warm-start cache of an earlier run with the same seed (docs/runs.sh).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/ws}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

source docs/runs.sh  # run, seeded

# The stages, 5 epochs (flags/quick.cfg) each:
NO_REAL="--pseudo_label_weight=0 --self_label_weight=0"       # warm start + GAN, no real-image term
PSEUDO="--self_label_weight=0"                                 # + L^{x,warm}
CONTROL="--adversarial_weight=0 --latent_consistency_weight=0 --real_fake_consistency_weight=0 \
--diversity_weight=0 --noeval_quality"                          # both real-image terms, no GAN
stages() {  # stages <seed>
  seeded "quick_s$1" "$1" --flagfile=flags/quick.cfg               # the default: + L^{x,self}
  seeded "ctrl_s$1" "$1" --flagfile=flags/quick.cfg $CONTROL
  seeded "noreal_s$1" "$1" --flagfile=flags/quick.cfg $NO_REAL
  seeded "pseudo_s$1" "$1" --flagfile=flags/quick.cfg $PSEUDO
}

lane_a() {
  seeded m5k_s0 0 --flagfile=flags/mnist_5k.cfg                    # issue 14's 30-minute recipe
  stages 0
  stages 2
}

lane_b() {
  seeded m5k_s1 1 --flagfile=flags/mnist_5k.cfg
  stages 1
  for d in 0 3; do  # RESULTS §4 with the new default (the warm start's alpha_k from its weights)
    seeded "imb${d}_s0" 0 --flagfile=flags/imbalanced_mnist_5k.cfg --dominant_class=$d
  done
}

lane_c() {
  seeded m5k_s2 2 --flagfile=flags/mnist_5k.cfg
}

# Usage: docs/run_warm_start_study.sh [a] [b] [c] (default: all three lanes at once).
for lane in ${@:-a b c}; do
  "lane_$lane" > "$OUT/lane_$lane.out" 2>&1 &
done
wait
