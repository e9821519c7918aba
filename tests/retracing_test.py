"""The compiled train step is traced once: no retracing after the first step, across epochs.

A retrace re-runs `train_step` in Python, so counting its calls counts traces (eager steps
would count every step, so the count also proves the step is compiled)."""
import numpy as np
import pytest

from conftest import tiny_config
from gmmgan_tf.data import DataBundle
from gmmgan_tf.gan import GMMGAN


def tiny_bundle(n=24, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32)
    labels = np.arange(n) % 3
    return DataBundle("tiny", images, labels, images[:6], labels[:6], num_classes=3)


def counted_model(config):
    """A compiled model and the list that grows by one at every trace of its train_step."""
    model = GMMGAN(config, (28, 28, 1))
    model.compile(jit_compile=config.jit_compile)
    traces, step = [], model.train_step

    def counting_step(data):
        traces.append(1)
        return step(data)

    model.train_step = counting_step
    return model, traces


@pytest.mark.parametrize("overrides", [
    {"model": "gaussian"},
    {"model": "gmm"},
    {},
    {"shared_encoder": True, "real_augment_consistency_weight": 1.0, "diversity_weight": 1.0},
    {"real_fake_consistency": "marginal_kl", "jit_compile": True},
])
def test_train_step_is_traced_once_over_several_epochs(overrides):
    config = tiny_config(**overrides)
    model, traces = counted_model(config)
    history = model.fit(tiny_bundle().train_dataset(config.batch_size, seed=0), epochs=3,
                        steps_per_epoch=3, verbose=0)
    assert len(history.history["d_loss"]) == 3
    assert np.all(np.isfinite(history.history["d_loss"]))
    assert len(traces) == 1, f"train_step traced {len(traces)} times in 9 steps"


def test_the_count_sees_a_retrace():
    """A new batch size needs a new trace: the count above would see a retracing step."""
    model, traces = counted_model(tiny_config(model="gaussian"))
    for batch_size in (6, 4):
        model.fit(tiny_bundle().train_dataset(batch_size, seed=0), epochs=1, steps_per_epoch=2,
                  verbose=0)
    assert len(traces) == 2
