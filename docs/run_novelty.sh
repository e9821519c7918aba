#!/usr/bin/env bash
# The leave-one-class-out novelty tables of docs/NOVELTY.md: for each class d of $DIGITS, an MFA
# and a GMM-GAN trained on $DATASET without d (--exclude_classes=d), scored on the held-out images
# (mnist_5k: d's 100 of 1,000 are the novelties; fashion_mnist: 1,000 of 10,000). One TensorFlow
# thread, one run at a time (the cores are shared); a run whose metrics.json exists is skipped, so
# the script resumes after an interruption.
#   docs/run_novelty.sh                    # both models, digits 0-9, then the table
#   MODELS=mfa DIGITS="3 7" docs/run_novelty.sh
#   RECIPE=flags/quick.cfg EPOCHS=3 docs/run_novelty.sh   # the GMM-GAN recipe and its length
#   DATASET=fashion_mnist OUT=runs/novelty_fashion DIGITS="0 5 8" EPOCHS=1 docs/run_novelty.sh
#     (flags/fashion_mnist.cfg and flags/mfa_fashion_mnist.cfg; needs `make data` once)
# Then: $PY docs/novelty_table.py $OUT   (also run at the end)
set -u
cd "$(dirname "$0")/.."
DATASET=${DATASET:-mnist_5k}
OUT=${OUT:-runs/novelty}
PY=${PY:-.venv/bin/python}
DIGITS=${DIGITS:-"0 1 2 3 4 5 6 7 8 9"}
MODELS=${MODELS:-"mfa gmmgan"}
case $DATASET in
  mnist_5k) MFA_FLAGS=flags/mfa_mnist_5k.cfg; RECIPE=${RECIPE:-flags/quick.cfg} ;;
  fashion_mnist) MFA_FLAGS=flags/mfa_fashion_mnist.cfg; RECIPE=${RECIPE:-flags/fashion_mnist.cfg} ;;
  *) echo "DATASET must be mnist_5k or fashion_mnist (got $DATASET)" >&2; exit 2 ;;
esac
EPOCHS=${EPOCHS:-5}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

NICE=${NICE-nice -n 15}  # NICE= (empty) runs at normal priority
source docs/runs.sh  # run <name> <flags...>

for model in $MODELS; do
  for d in $DIGITS; do
    case $model in
      # NDB/K of 2,000 samples only: the table needs the likelihoods, not the sample quality.
      mfa) run "mfa_$d" --flagfile="$MFA_FLAGS" --exclude_classes="$d" \
             --ndb_samples=2000 ;;
      gmmgan) run "gmmgan_$d" --flagfile="$RECIPE" --exclude_classes="$d" --epochs="$EPOCHS" \
                --eval_every=0 --noeval_quality ;;
    esac
  done
done
"$PY" docs/novelty_table.py "$OUT"
