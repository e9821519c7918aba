"""tf.distribute: a 2-replica MirroredStrategy step equals a 1-device step on the same global
batch and noise, replicas draw different noise, and a two-process MultiWorkerMirroredStrategy
run checkpoints from the chief only, resumes, and stops cleanly when a worker gets SIGTERM.

Splitting the CPU into logical devices must happen before TensorFlow initialises it, so the
strategy scenarios run in a fresh interpreter: `python tests/distribute_test.py <scenario>`
prints one JSON line.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from gmmgan_tf.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
IMAGE_SHAPE = (28, 28, 1)
GLOBAL_BATCH = 8


def run_scenario(name: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, name, *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


VARIANTS = {
    # Per-component heads, IIC + cross-entropy, paired MI and the mode-seeking term (which
    # tiny_config switches off) at its default weight.
    "default_recipe": {"diversity_weight": Config().diversity_weight},
    "single_head_literal": {"discriminator_heads": "single",
                            "real_fake_consistency": "marginal_kl",
                            "pcm_adversarial_update": True, "generator_consistency": True},
    "gmm_baseline": {"model": "gmm"},
    # R1, at a weight where it dominates D's gradient (its per-head weights need the global
    # batch), and G's moving average; not --diff_augment, whose draws differ between replicas,
    # as the noise does.
    "r1_and_ema": {"r1_weight": 100.0, "ema_decay": 0.9},
    # The mode regulariser: E's codes and the reals are gathered into the global batch.
    "reconstruction": {"reconstruction_weight": 10.0},
    # The coverage term: each real image searches the global batch's fakes of its component.
    "coverage": {"coverage_weight": 10.0},
}


@pytest.fixture(scope="module")
def mirrored_results():
    """One interpreter (split into 2 CPU devices) for every mirrored scenario."""
    return run_scenario("mirrored", json.dumps(VARIANTS))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_two_replica_step_equals_one_device_step(mirrored_results, variant):
    """SGD, not Adam: Adam's first step is nearly sign(g), blind to a wrong gradient scale."""
    out = mirrored_results[variant]
    assert out["replicas"] == 2
    assert out["max_update"] > 1e-4  # the step moved the weights
    # float32 all-reduce sums in another order than one device: differences of up to ~2e-4 of
    # the largest update were seen; a missing all_gather gives 1.5e-2.
    assert out["worst_relative_difference"] < 1e-3, out["worst_variable"]


def test_the_replicas_draw_different_noise(mirrored_results):
    out = mirrored_results["noise"]
    assert out["shapes"] == [[4, 3, 4], [4, 3, 4]]
    assert out["replicas_differ"] and out["successive_steps_differ"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_two_workers(workdir, scratch, epochs, steps_per_epoch=2, flags=()):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(ENV, TMPDIR=str(scratch[index]), TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "main.py", "--flagfile=flags/smoke.cfg", f"--workdir={workdir}",
             "--strategy=multi_worker", f"--epochs={epochs}", "--eval_every=0",
             f"--steps_per_epoch={steps_per_epoch}", *flags], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers


def _outputs(workers):
    outputs = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


def _train_two_workers(workdir, scratch, epochs, steps_per_epoch=2, flags=()):
    return _outputs(_start_two_workers(workdir, scratch, epochs, steps_per_epoch, flags))


@pytest.mark.slow
def test_multi_worker_checkpoints_from_the_chief_and_resumes(tmp_path):
    workdir = tmp_path / "run"
    scratch = [tmp_path / "scratch0", tmp_path / "scratch1"]
    for s in scratch:
        s.mkdir()
    _train_two_workers(workdir, scratch, epochs=1)
    assert sorted(os.listdir(workdir / "checkpoints")) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    # Worker 1 saved too (collectively), into scratch it removed afterwards.
    assert os.listdir(scratch[1]) == []
    outputs = _train_two_workers(workdir, scratch, epochs=2)
    assert all("Resuming" in out and "after epoch 1" in out for out in outputs)
    assert "ckpt-2.index" in os.listdir(workdir / "checkpoints")
    assert os.listdir(scratch[1]) == []
    assert json.load(open(workdir / "metrics.json"))["epochs"] == 2


@pytest.mark.slow
def test_multi_worker_default_recipe_trains_every_worker_on_the_chiefs_warm_start(tmp_path):
    """Only the chief clusters the images and pre-trains the PCM; the other worker waits and
    starts from the same targets, PCM and alpha_k (the digest each prints covers them)."""
    scratch = [tmp_path / "scratch0", tmp_path / "scratch1"]
    for s in scratch:
        s.mkdir()
    outputs = _train_two_workers(
        tmp_path / "run", scratch, epochs=1,
        flags=["--pcm_init=embedding", "--warm_start_autoencoder_steps=5",
               "--warm_start_fit_images=300", "--warm_start_dims=2", "--pcm_pretrain_epochs=1"])
    assert "Warm start 1/" in outputs[0] and "Warm start 1/" not in outputs[1]
    digests = [re.findall(r"chief's clusters and PCM \(digest (\w+)\)", out) for out in outputs]
    assert digests[0] == digests[1] and len(digests[0]) == 1, digests


@pytest.mark.slow
def test_a_worker_receiving_sigterm_stops_both_after_the_same_step_and_they_resume(tmp_path):
    """TF's PreemptionCheckpointHandler: SIGTERM to one worker, and both finish the same step,
    checkpoint it (collectively, the chief's copy kept), exit 0 with one line; then resume."""
    workdir = tmp_path / "run"
    scratch = [tmp_path / "scratch0", tmp_path / "scratch1"]
    for s in scratch:
        s.mkdir()
    workers = _start_two_workers(workdir, scratch, epochs=1000, steps_per_epoch=50)
    try:
        state = workdir / "checkpoints" / "checkpoint"
        deadline = time.time() + 240
        while time.time() < deadline and not state.exists() and workers[1].poll() is None:
            time.sleep(0.2)
        assert state.exists(), "no epoch ended"
        workers[1].send_signal(signal.SIGTERM)  # the non-chief: the chief learns it from TF
        outputs = _outputs(workers)
    finally:
        for worker in workers:
            worker.kill()
    lines = [[line for line in out.splitlines() if line.startswith("SIGTERM: training stopped")]
             for out in outputs]
    assert len(lines[0]) == len(lines[1]) == 1, outputs
    stopped = re.search(r"after (step (\d+) of )?epoch (\d+)", lines[0][0])
    assert stopped.group(0) in lines[1][0]  # the same step on both
    epoch = int(stopped.group(3))
    assert f"ckpt-{epoch}" in open(state).readline()
    assert os.listdir(scratch[1]) == []
    # Resume: to the end of the epoch it stopped in (or one more, if it stopped at its end).
    outputs = _train_two_workers(workdir, scratch, epochs=epoch + (0 if stopped.group(1) else 1),
                                 steps_per_epoch=50)
    assert all(re.search(rf"Resuming \S+ {stopped.group(0)}\.", out) for out in outputs), outputs
    assert json.load(open(workdir / "metrics.json"))["epochs"] >= epoch


# --- scenarios, run in a fresh interpreter ----------------------------------------------------
def _mirrored():
    from gmmgan_tf.distribute import split_cpu

    split_cpu(2)
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _per_replica(strategy, *arrays):
    """Replica r gets rows [r*m, (r+1)*m) of every array: the global batch, split in order."""
    import tensorflow as tf

    def value(context):
        r, n = context.replica_id_in_sync_group, context.num_replicas_in_sync
        return tuple(tf.constant(a[r * len(a) // n:(r + 1) * len(a) // n]) for a in arrays)

    return strategy.experimental_distribute_values_from_function(value)


def scenario_mirrored(variants: str) -> dict:
    strategy = _mirrored()
    results = {name: _equivalence(strategy, overrides)
               for name, overrides in json.loads(variants).items()}
    results["noise"] = _noise(strategy)
    return results


def _equivalence(strategy, overrides: dict) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from conftest import tiny_config
    from gmmgan_tf.train import build_model

    keras.utils.set_random_seed(0)
    config = tiny_config(batch_size=GLOBAL_BATCH, **overrides)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (GLOBAL_BATCH, *IMAGE_SHAPE)).astype(np.float32)
    eps = rng.standard_normal((GLOBAL_BATCH, config.num_components, config.latent_dim)
                              ).astype(np.float32)

    def make(on):
        model = build_model(config, IMAGE_SHAPE, on)
        with on.scope():
            model.optimizers = {g: keras.optimizers.SGD(0.5) for g in model.optimizers}
            for group, optimizer in model.optimizers.items():
                optimizer.build(model.variable_groups()[group])
        return model

    def updated(model):  # the trained variables and G's moving average
        average = model.generator_ema.variables if model.generator_ema is not None else []
        return model.trainable_variables + average

    single, mirrored = make(tf.distribute.get_strategy()), make(strategy)
    for a, b in zip(single.variables, mirrored.variables):
        b.assign(a.numpy())
    before = [v.numpy().copy() for v in updated(single)]
    single.train_step((tf.constant(images), tf.constant(eps)))
    tf.function(lambda data: strategy.run(mirrored.train_step, args=(data,)))(
        _per_replica(strategy, images, eps))
    worst, worst_name, max_update = 0.0, "", 0.0
    for start, a, b in zip(before, updated(single), updated(mirrored)):
        da, db = a.numpy() - start, b.numpy() - start
        scale = np.abs(da).max()
        max_update = max(max_update, scale)
        error = float(np.abs(da - db).max() / max(scale, 1e-12)) if scale > 0 else 0.0
        if error > worst:
            worst, worst_name = error, a.path
    return {"replicas": strategy.num_replicas_in_sync, "worst_relative_difference": worst,
            "worst_variable": worst_name, "max_update": float(max_update)}


def _noise(strategy) -> dict:
    import numpy as np
    import tensorflow as tf

    from conftest import tiny_config
    from gmmgan_tf.train import build_model

    model = build_model(tiny_config(), IMAGE_SHAPE, strategy)
    draw = tf.function(lambda: strategy.run(lambda: model.replica_noise((4, 3, 4))))
    first = [t.numpy() for t in strategy.experimental_local_results(draw())]
    second = [t.numpy() for t in strategy.experimental_local_results(draw())]
    return {"shapes": [list(a.shape) for a in first],
            "replicas_differ": bool(np.abs(first[0] - first[1]).min() > 0),
            "successive_steps_differ": bool(np.abs(first[0] - second[0]).min() > 0)}


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    scenario = {"mirrored": scenario_mirrored}[sys.argv[1]]
    print(json.dumps(scenario(*sys.argv[2:])))
