"""The TensorBoard HParams view of a training run: its options and its final numbers.

<workdir>/tensorboard/ is itself a TensorBoard run (next to train/ and eval/) that holds the
HParams experiment (which options and metrics the table has), this run's option values (written
when training starts) and its final metrics as scalars `final/<metric>` (written when it ends).
So `tensorboard --logdir=runs/s2` shows every workdir under runs/s2 as one row of a sortable
table and one line of the parallel-coordinates view. Workdirs trained before this existed get
their row from their config.json and metrics.json:

    python -m gmmgan_tf.hparams runs/s2/*

A run that already has its HParams (from training, or an earlier backfill) is left as it is:
a second set of event files would make a second row. TensorFlow and TensorBoard are imported
only when something is written, so a call without runs prints its usage at once.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

from gmmgan_tf.config import Config

# The options that differ between experiments. Names that are not Config fields are skipped, so
# an option may be listed before it exists.
HPARAMS = ("model", "dataset", "num_components", "latent_dim", "discriminator_heads", "gan_loss",
           "consistency", "real_fake_consistency", "pcm_adversarial_update",
           "generator_consistency", "shared_encoder", "pcm_init", "pcm_pretrain_epochs",
           "prior_mean_init_std", "adversarial_weight", "latent_consistency_weight",
           "real_fake_consistency_weight", "real_augment_consistency_weight",
           "pseudo_label_weight", "self_label_weight", "diversity_weight", "ema_decay",
           "diff_augment", "r1_weight", "reconstruction_weight", "width_multiplier", "epochs",
           "batch_size", "seed")
# metrics.json key -> column title.
METRICS = {"pcm_acc": "PCM ACC", "pcm_nmi": "PCM NMI", "pcm_ari": "PCM ARI",
           "agreement_identity": "agreement", "component_purity": "purity",
           "diversity_ratio_min": "diversity (min)", "domain_fid": "domain FID",
           "ndb_over_k": "NDB/K"}
METRIC_PREFIX = "final/"


def hparams() -> list:
    """The hp.HParams of HPARAMS that Config has, with the choices of enum and bool options."""
    from tensorboard.plugins.hparams import api as hp

    fields = {f.name: f for f in dataclasses.fields(Config)}
    params = []
    for name in HPARAMS:
        if name not in fields:
            continue
        field = fields[name]
        if field.metadata.get("choices"):
            domain = hp.Discrete(list(field.metadata["choices"]))
        elif isinstance(field.default, bool):
            domain = hp.Discrete([False, True])
        else:
            domain = None  # numbers and free strings: TensorBoard shows the values it finds
        params.append(hp.HParam(name, domain, description=field.metadata.get("help")))
    return params


def metrics() -> list:
    from tensorboard.plugins.hparams import api as hp

    return [hp.Metric(METRIC_PREFIX + name, display_name=title)
            for name, title in METRICS.items()]


def logdir(workdir: str) -> str:
    return os.path.join(workdir, "tensorboard")


def write_config(config: Config) -> None:
    """The experiment and this run's option values (a session of the HParams plugin)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    params = hparams()
    writer = tf.summary.create_file_writer(logdir(config.workdir))
    with writer.as_default():
        hp.hparams_config(hparams=params, metrics=metrics())
        hp.hparams({p.name: getattr(config, p.name) for p in params},
                   trial_id=os.path.normpath(config.workdir))
    writer.close()


def write_final_metrics(workdir: str, scores: dict, step: int) -> None:
    """The METRICS found in `scores` (finite numbers only) as `final/<name>` scalars."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(logdir(workdir))
    with writer.as_default(step=step):
        for name in METRICS:
            value = scores.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                tf.summary.scalar(METRIC_PREFIX + name, float(value))
    writer.close()


def written_tags(workdir: str) -> set[str]:
    """The summary tags of the event files in logdir(workdir) itself (not train/ or eval/)."""
    import tensorflow as tf

    root = logdir(workdir)
    files = [os.path.join(root, name) for name in sorted(os.listdir(root))
             if name.startswith("events.out.tfevents")] if os.path.isdir(root) else []
    return {value.tag for file in files for event in tf.compat.v1.train.summary_iterator(file)
            for value in event.summary.value}


def backfill(workdir: str) -> bool:
    """The HParams session of a finished run, from its config.json and metrics.json, writing
    only the part (options, final metrics) that its event files lack; False when nothing was
    missing."""
    from tensorboard.plugins.hparams import metadata

    from gmmgan_tf import workdir as wd

    config = dataclasses.replace(wd.load_config(workdir), workdir=workdir)  # wherever it is now
    with open(wd.path(workdir, "metrics.json")) as f:
        scores = json.load(f)
    tags = written_tags(workdir)
    has_options = metadata.SESSION_START_INFO_TAG in tags
    has_metrics = any(tag.startswith(METRIC_PREFIX) for tag in tags)
    if not has_options:
        write_config(config)
    if not has_metrics:
        write_final_metrics(workdir, scores, step=scores.get("epochs", config.epochs))
    return not (has_options and has_metrics)


def main(runs: list[str]) -> int:
    if not runs:
        print(f"usage: python -m gmmgan_tf.hparams WORKDIR [WORKDIR ...]  (finished training "
              "runs, e.g. runs/s2/*: gives each its row in TensorBoard's HParams)",
              file=sys.stderr)
        return 2
    from gmmgan_tf.errors import UserError

    for run in runs:
        if not os.path.exists(os.path.join(run, "metrics.json")):
            print(f"{run}: skipped (no metrics.json: not a finished training run)")
            continue
        try:
            written = backfill(run)
        except UserError as e:
            print(f"{run}: skipped ({e})")
            continue
        print(f"{run}: HParams written to {logdir(run)}" if written
              else f"{run}: already has its HParams in {logdir(run)}; nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
