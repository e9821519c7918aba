#!/usr/bin/env bash
# The leave-one-digit-out novelty table of docs/NOVELTY.md: for each digit d of $DIGITS, an MFA
# and a GMM-GAN trained on mnist_5k without d (--exclude_classes=d), scored on the 1,000 held-out
# digits (d's 100 are the novelties). One TensorFlow thread, one run at a time (the cores are
# shared); a run whose metrics.json exists is skipped, so the script resumes after an interruption.
#   docs/run_novelty.sh                    # both models, digits 0-9, then the table
#   MODELS=mfa DIGITS="3 7" docs/run_novelty.sh
#   RECIPE=flags/quick.cfg EPOCHS=3 docs/run_novelty.sh   # the GMM-GAN recipe and its length
# Then: $PY docs/novelty_table.py $OUT   (also run at the end)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/novelty}
PY=${PY:-.venv/bin/python}
DIGITS=${DIGITS:-"0 1 2 3 4 5 6 7 8 9"}
MODELS=${MODELS:-"mfa gmmgan"}
RECIPE=${RECIPE:-flags/quick.cfg}
EPOCHS=${EPOCHS:-5}
mkdir -p "$OUT"
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

NICE="nice -n 15"
source docs/runs.sh  # run <name> <flags...>

for model in $MODELS; do
  for d in $DIGITS; do
    case $model in
      # NDB/K of 2,000 samples only: the table needs the likelihoods, not the sample quality.
      mfa) run "mfa_$d" --flagfile=flags/mfa_mnist_5k.cfg --exclude_classes="$d" \
             --ndb_samples=2000 ;;
      gmmgan) run "gmmgan_$d" --flagfile="$RECIPE" --exclude_classes="$d" --epochs="$EPOCHS" \
                --eval_every=0 --noeval_quality ;;
    esac
  done
done
"$PY" docs/novelty_table.py "$OUT"
