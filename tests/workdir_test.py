"""Checkpoints: a restore gives back every saved value or fails clearly, and a run interrupted
after an epoch, or stopped by SIGTERM mid-epoch, and resumed ends exactly where an
uninterrupted run does."""
import dataclasses
import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from gmmgan_tf import train, workdir as wd
from gmmgan_tf.config import ConfigError
from gmmgan_tf.errors import Stopped
from gmmgan_tf.gan import GMMGAN

IMAGE_SHAPE = (28, 28, 1)


def compiled(**overrides):
    return train.build_model(tiny_config(**overrides), IMAGE_SHAPE, tf.distribute.get_strategy())


def state(model):
    """Every value a checkpoint must carry: the model's variables (networks, prior, BatchNorm
    statistics, noise seed, loss trackers) and each optimizer's (step count, slots)."""
    out = {f"model/{i}": v.numpy().copy() for i, v in enumerate(model.variables)}
    for group, optimizer in model.optimizers.items():
        out.update({f"{group}/{i}": v.numpy().copy() for i, v in enumerate(optimizer.variables)})
    return out


def test_restore_gives_back_every_variable_and_optimizer_slot(tmp_path):
    model = compiled(diversity_weight=0.1)
    for seed in range(2):
        model.train_step(tf.random.uniform((6, *IMAGE_SHAPE), -1, 1, seed=seed))
    saved = state(model)
    wd.Checkpointer(model, str(tmp_path)).save(7)
    keras.utils.set_random_seed(1)
    fresh = compiled(diversity_weight=0.1)
    assert saved.keys() == state(fresh).keys()
    differ = [k for k, v in state(fresh).items() if not np.array_equal(v, saved[k])]
    assert len(differ) > len(saved) // 2  # the comparison below is not vacuous
    assert wd.Checkpointer(fresh, str(tmp_path)).restore_latest() == 7
    restored = state(fresh)
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


def test_a_checkpoint_lacking_some_of_the_models_variables_is_refused(tmp_path):
    # A `gmm` run has no PCM: restoring it into a gmmgan would leave the PCM at its init.
    wd.Checkpointer(compiled(model="gmm"), str(tmp_path)).save(1)
    with pytest.raises(ConfigError, match=r"--workdir: .*ckpt-1 lacks \d+ objects of this model "
                                          r"\(e\.g\. .*pcm.*train into a new --workdir"):
        wd.Checkpointer(compiled(), str(tmp_path)).restore_latest()


def test_an_evaluation_model_without_optimizers_restores_from_a_training_checkpoint(tmp_path):
    model = compiled()
    model.train_step(tf.random.uniform((6, *IMAGE_SHAPE), -1, 1, seed=0))
    wd.Checkpointer(model, str(tmp_path)).save(1)
    reader = GMMGAN(tiny_config(), IMAGE_SHAPE)  # as load_trained_model builds it
    assert wd.Checkpointer(reader, str(tmp_path)).restore_latest() == 1
    for a, b in zip(model.variables, reader.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def checkpoint_values(workdir):
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.endswith("VARIABLE_VALUE") and "save_counter" not in name}


# The levers: G's moving average (checkpointed), D's DiffAugment views (drawn from the
# checkpointed noise seed), R1 and the mode regulariser's encoder (checkpointed through G's
# optimizer, which holds its variables).
LEVERS = dict(ema_decay=0.9, diff_augment="color,translation,cutout", r1_weight=1.0,
              reconstruction_weight=1.0)


def run(workdir, epochs, **levers):
    # The default recipe's random parts: noise, mode seeking, and the self-labelling
    # augmenter (threshold 0, so that its views move the PCM from the first step).
    config = dataclasses.replace(
        tiny_config(diversity_weight=0.1, self_label_weight=1.0, self_label_threshold=0.0,
                    **levers),
        workdir=str(workdir), epochs=epochs, steps_per_epoch=2, eval_every=0,
        eval_quality=False)
    return train.train_and_evaluate(config)


def whole_run(workdir, **levers):
    """(checkpoint values, metrics without the time) of 2 epochs of 2 steps in one go."""
    metrics = run(workdir, 2, **levers)
    del metrics["train_seconds_this_session"]
    return checkpoint_values(workdir), metrics


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return whole_run(tmp_path_factory.mktemp("whole"))


def assert_same_run(uninterrupted, workdir, metrics, levers=None):
    a, b = uninterrupted[0], checkpoint_values(workdir)
    assert a.keys() == b.keys() and "model/noise_seed_state/.ATTRIBUTES/VARIABLE_VALUE" in a
    assert "model/augmenter_seed_states/2/.ATTRIBUTES/VARIABLE_VALUE" in a
    assert any(name.startswith("model/generator_ema/") for name in a) == bool(levers)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    del metrics["train_seconds_this_session"]
    assert json.dumps(uninterrupted[1], sort_keys=True) == json.dumps(metrics, sort_keys=True)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, uninterrupted):
    run(tmp_path, 1)
    assert_same_run(uninterrupted, tmp_path, run(tmp_path, 2))


def test_interrupted_then_resumed_equals_uninterrupted_with_the_levers(tmp_path):
    whole = whole_run(tmp_path / "whole", **LEVERS)
    run(tmp_path / "parts", 1, **LEVERS)
    assert_same_run(whole, tmp_path / "parts", run(tmp_path / "parts", 2, **LEVERS), LEVERS)


@pytest.mark.parametrize("signal_after", [1, 3], ids=["epoch_1_step_1", "epoch_2_step_1"])
def test_sigterm_mid_epoch_then_resume_equals_uninterrupted(tmp_path, monkeypatch,
                                                             uninterrupted, signal_after):
    """SIGTERM mid-epoch: the step ends, is checkpointed (with the steps done in its epoch),
    training stops; the same command then skips those batches and ends as one run does."""
    def unhandled(signum, frame):  # were SIGTERM not handled, it would end pytest
        raise AssertionError("SIGTERM reached the default handler")

    previous = signal.signal(signal.SIGTERM, unhandled)
    seen = []
    batch_end = train.NonFiniteGuard.on_train_batch_end

    def signal_at(self, batch, logs=None):
        batch_end(self, batch, logs)
        seen.append(batch)
        if len(seen) == signal_after:
            os.kill(os.getpid(), signal.SIGTERM)  # handled before the next callback runs

    monkeypatch.setattr(train.NonFiniteGuard, "on_train_batch_end", signal_at)
    try:
        epoch = signal_after // 2 + 1
        with pytest.raises(Stopped, match=f"^SIGTERM: training stopped after step 1 of epoch "
                                          f"{epoch} and wrote .*ckpt-{epoch}; run the same"):
            run(tmp_path, 2)
        assert signal.getsignal(signal.SIGTERM) is unhandled  # restored after training
        monkeypatch.setattr(train.NonFiniteGuard, "on_train_batch_end", batch_end)
        metrics = run(tmp_path, 2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert_same_run(uninterrupted, tmp_path, metrics)


@pytest.mark.parametrize("unsaved", [("noise_seed_state", "augmenter_seed_states"),
                                     ("augmenter_seed_states",)])
def test_a_checkpoint_from_before_the_saved_random_states_restores_with_a_warning(
        tmp_path, capsys, unsaved):
    old = compiled(self_label_weight=1.0)
    for name in unsaved:  # as the model was before these states were checkpointed
        delattr(old, name)
    wd.Checkpointer(old, str(tmp_path)).save(2)
    assert wd.Checkpointer(compiled(self_label_weight=1.0), str(tmp_path)).restore_latest() == 2
    assert "predates the saved random states" in capsys.readouterr().out
