"""The training loop: Keras `fit` with checkpoints, TensorBoard, evaluation, a NaN guard and a
clean stop on SIGTERM or SIGINT."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import signal
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from gmmgan_tf import data as data_lib
from gmmgan_tf import evaluation, hparams, images, projector, warm_start, workdir as wd
from gmmgan_tf.config import Config
from gmmgan_tf.errors import Stopped, TrainingDiverged
from gmmgan_tf.distribute import from_chief, is_chief, make_strategy, worker_workdir
from gmmgan_tf.gan import GMMGAN
from gmmgan_tf.metrics import clustering, report


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, before that epoch can be checkpointed."""

    def __init__(self):
        super().__init__()
        self.failure: str | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                self.failure = f"{name} became {float(value)} in epoch {self.epoch + 1}, step {batch}"
                self.model.stop_training = True
                return


class StopOnSignal(keras.callbacks.Callback):
    """SIGTERM or SIGINT during training: the running step ends, a checkpoint of it is written
    (mid-epoch here; at an epoch's end by EpochEnd, as always) and training stops; a second
    signal acts at once. Under multi_worker, TF's PreemptionCheckpointHandler watches SIGTERM
    instead, so that every worker stops, and checkpoints collectively, after the same step (a
    Ctrl-C there stops one worker at once, as before)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, checkpointer: wd.Checkpointer, steps: int, strategy):
        super().__init__()
        self.checkpointer, self.steps = checkpointer, steps
        self.resolver = getattr(strategy, "cluster_resolver", None)
        self.multi_worker = self.resolver is not None and bool(self.resolver.cluster_spec().jobs)
        self.offset = 0  # steps of the current epoch done before this fit
        self.epoch = 0
        self.received: str | None = None  # the signal's name
        self.stopped: tuple[int, int] | None = None  # (epoch, steps done in it)
        self.preemption = None
        self._previous = {}

    @contextlib.contextmanager
    def watching(self):
        """Handles the signals for the `with` block (the fits), then restores the handlers."""
        self._previous = {s: signal.getsignal(s) for s in self.SIGNALS}
        scratch = None
        try:
            if self.multi_worker:
                # Its own checkpoint (the steps it counted) and a non-chief's workertemp_<i>/
                # beside it go to scratch; ours is written by save_fn.
                scratch = tempfile.mkdtemp(prefix="gmmgan-preemption-")
                self.preemption = tf.distribute.experimental.PreemptionCheckpointHandler(
                    self.resolver, tf.train.Checkpoint(), os.path.join(scratch, "checkpoints"),
                    tf.distribute.experimental.TerminationConfig(
                        exit_fn=lambda: None, save_fn=self._stop))
            else:
                for s in self.SIGNALS:
                    signal.signal(s, self._receive)
            yield
        finally:
            for s, handler in self._previous.items():
                signal.signal(s, handler)
            self.preemption = None
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    def _receive(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name
        for s, handler in self._previous.items():  # a second signal: what it did before
            signal.signal(s, handler)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.model.stop_training:  # NonFiniteGuard's stop: nothing to checkpoint
            return
        step = self.offset + batch + 1
        if self.preemption is not None:
            self.preemption.save_checkpoint_if_preempted(step)  # -> _stop on the agreed step
        elif self.received:
            self._stop(step)

    def _stop(self, step: int) -> None:
        self.stopped = (self.epoch, step)
        if self.mid_epoch:
            self.checkpointer.save(self.epoch, step)
        self.model.stop_training = True

    @property
    def mid_epoch(self) -> bool:
        return self.stopped is not None and self.stopped[1] < self.steps

    def raise_if_stopped(self, epochs: int) -> None:
        """Stopped, with its one line, when a signal came during the fits."""
        name = self.received or "SIGTERM"  # under multi_worker, TF's handler received it
        latest = self.checkpointer.manager.latest_checkpoint
        if self.stopped:
            where = (f"step {self.stopped[1]} of epoch {self.stopped[0] + 1}" if self.mid_epoch
                     else f"epoch {self.stopped[0] + 1}")
            raise Stopped(f"{name}: training stopped after {where} and wrote {latest}; run the "
                          "same command again to resume from there")
        if self.received:  # after the last step: only the samples and metrics are left
            raise Stopped(f"{name}: all {epochs} epochs are trained and in {latest}; run the "
                          "same command again to write samples.png and metrics.json")


class EpochEnd(keras.callbacks.Callback):
    """Checkpoint, per-component sample grid and evaluation after every completed epoch. The
    evaluation scores the validation split (`validation` is its for_scoring bundle; None: no
    validation split, no evaluation): the test split waits for the end of the run."""

    def __init__(self, config: Config, validation, checkpointer: wd.Checkpointer,
                 guard: NonFiniteGuard, stop: StopOnSignal):
        super().__init__()
        self.config, self.validation = config, validation
        self.checkpointer, self.guard, self.stop = checkpointer, guard, stop
        self.writer = tf.summary.create_file_writer(wd.path(config.workdir, "tensorboard", "eval"))

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.failure or self.stop.mid_epoch:  # an incomplete epoch: no epoch's end
            return
        self.checkpointer.save(epoch + 1)
        with self.writer.as_default(step=epoch + 1):
            tf.summary.image("samples_per_component", sample_grid(self.model, self.config)[None])
            every = self.config.eval_every
            if every and (epoch + 1) % every == 0 and self.validation is not None:
                scores = report.scalars(evaluation.evaluate(
                    self.model, self.validation, self.config, self.config.eval_samples))
                for name, value in scores.items():
                    if math.isfinite(value):  # NaN: undefined this epoch (see evaluation.py)
                        tf.summary.scalar(f"validation/{name}", value)
                print(f"epoch {epoch + 1} validation: {evaluation.headline(scores)}", flush=True)
        self.writer.flush()


def sample_grid(model, config: Config) -> np.ndarray:
    """K rows (one per component) of `sample_rows` images with fixed noise, as uint8."""
    samples, _ = model.sample(config.sample_rows, seed=config.seed)
    return images.grid(samples, model.num_components, config.sample_rows)


def build_model(config: Config, image_shape, strategy: tf.distribute.Strategy) -> GMMGAN:
    with strategy.scope():
        model = GMMGAN(config, image_shape)
        model.compile(jit_compile=config.jit_compile)
    return model


def train_and_evaluate(config: Config) -> dict:
    """Trains (resuming from the workdir's last checkpoint) and writes samples and metrics.
    Raises Stopped when SIGTERM or SIGINT stopped the training (StopOnSignal)."""
    wd.save_config(config)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config)
    bundle = data_lib.load(config)
    print(f"Data: {bundle.name}, {len(bundle.train_images)} training images "
          f"{bundle.image_shape}, {bundle.num_validation} validation, {len(bundle.test_images)} "
          "test; training class counts "
          f"{np.bincount(bundle.train_labels, minlength=bundle.num_classes).tolist()}", flush=True)
    validation = bundle.for_scoring("validation") if bundle.num_validation else None
    if validation is None and config.eval_every:
        print("No validation split (--validation_fraction=0): no evaluation before the end of "
              "the run, which scores the test split.", flush=True)
    model = build_model(config, bundle.image_shape, strategy)
    # Non-chief workers of a multi-worker run write everything to scratch (see worker_workdir).
    scratch = worker_workdir(config.workdir, strategy)
    try:
        return _train(model, bundle, validation, strategy,
                      dataclasses.replace(config, workdir=scratch), restore_from=config.workdir)
    finally:
        if scratch != config.workdir:
            shutil.rmtree(scratch, ignore_errors=True)


def _train(model, bundle, validation, strategy, config: Config, restore_from: str) -> dict:
    checkpointer = wd.Checkpointer(model, config.workdir, restore_from=restore_from)
    initial_epoch = checkpointer.restore_latest()
    initial_step = int(checkpointer.step.numpy())
    hparams.write_config(config)  # after the restore, which can fail: then no file is written
    if checkpointer.restored:
        print(f"Resuming {config.workdir} after {checkpointer.position()}.", flush=True)

    targets, warm_start_scores = None, {}
    if config.uses_warm_start:
        targets, warm_start_scores = warm_start_targets(model, bundle, validation, config,
                                                        not checkpointer.restored, strategy)
    steps = config.steps_per_epoch or len(bundle.train_images) // config.batch_size
    guard = NonFiniteGuard()
    stop = StopOnSignal(checkpointer, steps, strategy)
    callbacks = [
        guard,
        stop,
        EpochEnd(config, validation, checkpointer, guard, stop),
        keras.callbacks.TensorBoard(wd.path(config.workdir, "tensorboard"), write_graph=False),
    ]
    # An epoch a signal interrupted ends first (a fit of its remaining steps), then the others.
    # Each fit skips the batches trained on before, so that the run sees the batches an
    # uninterrupted one would. (The resumed epoch's logged mean losses are of its later steps.)
    fits = [(initial_epoch, min(initial_epoch + 1, config.epochs), initial_step)] \
        if initial_step else []
    fits.append((initial_epoch + (1 if initial_step else 0), config.epochs, 0))
    start = time.time()
    with stop.watching():
        for first, end, done in fits:
            if first >= end or guard.failure or stop.stopped:
                continue
            stop.offset = done
            dataset = bundle.train_dataset(config.batch_size, config.seed, targets).skip(
                first * steps + done)
            model.fit(dataset, epochs=end, steps_per_epoch=steps - done, initial_epoch=first,
                      callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    if guard.failure:
        raise TrainingDiverged(
            f"training stopped: {guard.failure}; the last good checkpoint "
            f"({checkpointer.manager.latest_checkpoint or 'none'}) is kept; lower the learning "
            "rates or change the loss weights and run the same command to resume")
    stop.raise_if_stopped(config.epochs)
    metrics = finalize(model, bundle, validation, config)
    metrics.update(warm_start_scores)
    metrics["train_seconds_this_session"] = round(time.time() - start, 1)
    wd.write_json(wd.path(config.workdir, "metrics.json"), metrics)
    hparams.write_final_metrics(config.workdir, metrics, step=config.epochs)
    return metrics


def warm_start_targets(model, bundle, validation, config: Config, fresh: bool, strategy
                       ) -> tuple[np.ndarray, dict]:
    """The training targets of warm_start_on_chief on every worker. Under multi_worker only the
    chief computes (or reads) the warm start and pre-trains the PCM; the other workers wait for
    it and take its targets, PCM and alpha_k, so that every replica starts from one clustering
    (each computing its own could number the clusters differently)."""
    if is_chief(strategy):
        targets, scores = warm_start_on_chief(model, bundle, validation, config, fresh)
    else:
        targets = np.zeros([len(bundle.train_images), config.num_components], np.float32)
        scores = {}
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        targets, *weights, logits = from_chief(
            strategy, [targets, *model.pcm.get_weights(), model.prior.mixture_logits.numpy()])
        model.pcm.set_weights(weights)
        model.prior.mixture_logits.assign(logits)
        digest = hashlib.blake2b(targets.tobytes() + b"".join(w.tobytes() for w in weights),
                                 digest_size=6).hexdigest()
        print(f"Warm start: this worker starts from the chief's clusters and PCM (digest "
              f"{digest})", flush=True)
    return targets, scores


def warm_start_on_chief(model, bundle, validation, config: Config, fresh: bool
                        ) -> tuple[np.ndarray, dict]:
    """The warm start's responsibilities of the training images (cached in the workdir), and
    the validation scores of its stages (`validation`: the for_scoring bundle, or None). On a
    fresh run also pre-trains the PCM on them and starts alpha_k from the mixture weights (a
    resumed run has both in its checkpoint; a cache it has to rebuild is numbered as its PCM)."""
    result = warm_start.load_or_compute(
        config, bundle.train_images,
        reference=None if fresh else lambda: model.responsibilities(bundle.train_images))
    scores = {f"warm_start_{name}_seconds": value for name, value in result.seconds.items()}
    if result.encoder is not None and validation is not None:  # computed now: score its stages
        stages = {"warm_start": result.predict_proba}
        if result.clusterer is not None:  # the GaussianMixture's, before the neighbour stage
            stages["warm_start_mixture"] = result.mixture_proba
        for stage, proba in stages.items():
            clusters = proba(validation.test_images).argmax(axis=1)
            scores.update({f"val_{stage}_{name}": value for name, value in
                           clustering.clustering_scores(validation.test_labels, clusters).items()})
            print(f"Warm start{'' if stage == 'warm_start' else ' (mixture alone)'}: validation "
                  f"acc={scores[f'val_{stage}_acc']:.3g} nmi={scores[f'val_{stage}_nmi']:.3g}",
                  flush=True)
    if fresh and config.pcm_pretrain_epochs:
        start = time.time()
        loss = warm_start.pretrain_pcm(
            model.pcm, bundle.train_images, result.responsibilities,
            width_multiplier=config.width_multiplier, epochs=config.pcm_pretrain_epochs,
            learning_rate=config.learning_rate_c, seed=config.seed)
        scores["pretrain_seconds"] = round(time.time() - start, 1)
        line = (f"Warm start: PCM pre-trained for {config.pcm_pretrain_epochs} epochs in "
                f"{scores['pretrain_seconds']:.0f} s (loss {loss:.3f})")
        if validation is not None:
            pretrained = evaluation.pcm_clustering(model, validation)
            scores.update({f"val_pretrained_{name}": value for name, value in pretrained.items()})
            line += f"; validation {evaluation.headline(pretrained)}"
        print(line, flush=True)
    if fresh:
        model.prior.mixture_logits.assign(np.log(np.maximum(result.weights, 1e-6)))
    return result.responsibilities, scores


def finalize(model, bundle, validation, config: Config) -> dict:
    """samples.png, the Projector's view of the PCM and the final quality numbers: every score
    on the test split, and the PCM's clustering of the validation split (`val_*`) beside it."""
    images.save_png(wd.path(config.workdir, "samples.png"), sample_grid(model, config))
    if model.pcm is not None:
        projector.write(model, bundle.test_images, bundle.test_labels, config.workdir)
    metrics = {"model": config.model, "dataset": config.dataset,
               "epochs": config.epochs, "steps_per_epoch": config.steps_per_epoch
               or len(bundle.train_images) // config.batch_size}
    metrics.update(evaluation.evaluate(model, bundle, config, config.ndb_samples,
                                       progress=sys.stdout.isatty()))
    if model.pcm is not None and validation is not None:
        metrics.update({f"val_{name}": value
                        for name, value in evaluation.pcm_clustering(model, validation).items()})
    return metrics
