#!/usr/bin/env bash
# The runs behind docs/RESULTS.md §2-§5 (and the DCGAN / WGAN-GP rows of docs/MFA.md), in two
# lanes of one TensorFlow thread each (on 2 cores about as fast as one lane of two threads).
# A run whose metrics.json exists is skipped, so the script resumes after an interruption.
# Then: .venv/bin/python docs/make_report.py runs/s2
# About 100 minutes a lane on 2 CPU cores (K = 20 not yet run: it doubles the step).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/s2}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

source docs/runs.sh  # run <name> <flags...>

ndb_bins() {  # ndb_bins <name> <bins>: re-evaluates a run's NDB/K with other bins
  [ -f "$OUT/$1/eval/metrics_ndb$2.json" ] && return
  .venv/bin/python main.py --mode=evaluate --workdir="$OUT/$1" --ndb_bins="$2" \
    > "$OUT/$1_ndb$2.log" 2>&1 && cp "$OUT/$1/eval/metrics.json" "$OUT/$1/eval/metrics_ndb$2.json"
}

# Every run names its --diversity_weight: the default changed from 1 to 0.1 during this study
# (RESULTS §5), and the baselines of §2/§3 were run with 1.
W1="--diversity_weight=1"
W01="--diversity_weight=0.1"

lane_a() {  # issue 10 (the 30-minute recipe, seeds, the diversity weight) and the ablations of §5
  run mnist_5k_seed0 --flagfile=flags/mnist_5k.cfg $W1
  run mnist_5k_w01 --flagfile=flags/mnist_5k.cfg $W01  # the 30-minute recipe (2 threads in RESULTS)
  run quick_seed1 --flagfile=flags/quick.cfg --seed=1 $W1
  run div_0.3 --flagfile=flags/quick.cfg --diversity_weight=0.3
  run div_0.1 --flagfile=flags/quick.cfg $W01
  run div_0 --flagfile=flags/quick.cfg --diversity_weight=0
  run div_0.1_seed1 --flagfile=flags/quick.cfg $W01 --seed=1
  run div_0.1_seed2 --flagfile=flags/quick.cfg $W01 --seed=2
  run abl_cons_mi --flagfile=flags/quick.cfg $W01 --consistency=mi
  run abl_cons_xent --flagfile=flags/quick.cfg $W01 --consistency=xent
  run abl_rf_marginal --flagfile=flags/quick.cfg $W01 --real_fake_consistency=marginal_kl
  run abl_rf_none --flagfile=flags/quick.cfg $W01 --real_fake_consistency=none
  run abl_shared --flagfile=flags/quick.cfg $W01 --shared_encoder
  run abl_k5 --flagfile=flags/quick.cfg $W01 --num_components=5
  run abl_k20 --flagfile=flags/quick.cfg $W01 --num_components=20
}

lane_b() {  # baselines, compression (§3), WGAN-GP, imbalanced (§4)
  run gaussian --flagfile=flags/quick.cfg --model=gaussian --diversity_weight=0
  run gmm --flagfile=flags/quick.cfg --model=gmm $W1
  run gaussian_div1 --flagfile=flags/quick.cfg --model=gaussian $W1  # MSGAN-like: a DCGAN with the term
  run quick_seed0 --flagfile=flags/quick.cfg --seed=0 $W1
  run comp_w075 --flagfile=flags/quick.cfg --width_multiplier=0.75 $W1
  run comp_w05 --flagfile=flags/quick.cfg --width_multiplier=0.5 $W1
  run comp_w035 --flagfile=flags/quick.cfg --width_multiplier=0.35 $W1
  run wgan_gp --flagfile=flags/quick.cfg --model=gaussian --gan_loss=wgan_gp --diversity_weight=0
  for d in 0 3 7; do
    run "imb${d}_gaussian" --flagfile=flags/imbalanced_mnist_5k.cfg --dominant_class=$d \
      --model=gaussian --diversity_weight=0
    run "imb${d}_gmm" --flagfile=flags/imbalanced_mnist_5k.cfg --dominant_class=$d --model=gmm $W01
    run "imb${d}_gmmgan" --flagfile=flags/imbalanced_mnist_5k.cfg --dominant_class=$d $W01
  done
  for bins in 200 300; do ndb_bins gaussian $bins; ndb_bins wgan_gp $bins; done
}

lane_a > "$OUT/lane_a.out" 2>&1 &
lane_b > "$OUT/lane_b.out" 2>&1 &
wait
