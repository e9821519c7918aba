"""The real-data warm start: clustering on small synthetic data, its cache, its errors, and the
real-image loss terms that use it."""
import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

from gmmgan_tf import caches, losses, train, warm_start, workdir
from gmmgan_tf.errors import ConfigError, DataError, write_failure

from conftest import tiny_config
from faults_test import DAMAGES, FAULTS, FILLER, SITUATIONS, _fill, _tmpfs

SETTINGS = warm_start.Settings(num_components=3, autoencoder_steps=150, fit_images=120,
                               neighbors=10, dims=2, seed=0)


def _blobs(per_cluster=50, side=8, seed=0):
    """Three well-separated clusters of noisy `side`x`side` images in [-1, 1], shuffled."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(-0.8, 0.8, (3, side, side, 1))
    labels = rng.permutation(np.repeat(np.arange(3), per_cluster))
    images = prototypes[labels] + rng.normal(0, 0.1, (len(labels), side, side, 1))
    return np.clip(images, -1, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def blobs_result():
    images, labels = _blobs()
    return images, labels, warm_start.compute(images, SETTINGS, log=lambda _: None)


def test_recovers_separated_clusters_including_transformed_images(blobs_result):
    images, labels, result = blobs_result
    assert result.responsibilities.shape == (150, 3)
    np.testing.assert_allclose(result.responsibilities.sum(axis=1), 1.0, rtol=1e-5)
    # 120 images fit the autoencoder and UMAP, the other 30 are embedded by UMAP's transform.
    assert adjusted_rand_score(labels, result.responsibilities.argmax(axis=1)) == 1.0
    np.testing.assert_allclose(result.weights, [1 / 3] * 3, atol=0.05)
    # New images of the same clusters land in their clusters.
    new_images, new_labels = _blobs(per_cluster=5, seed=0)
    assert adjusted_rand_score(new_labels, result.predict_proba(new_images).argmax(axis=1)) == 1.0


def test_cache_round_trip_and_models(blobs_result, tmp_path):
    images, _, result = blobs_result
    directory = str(tmp_path / "warm_start")
    digest = caches.fingerprint(images)
    warm_start.save(result, directory, SETTINGS, digest)
    loaded = warm_start.load(directory, SETTINGS, digest, with_models=True)
    np.testing.assert_array_equal(loaded.responsibilities, result.responsibilities)
    np.testing.assert_allclose(loaded.predict_proba(images[:10]), result.predict_proba(images[:10]),
                               atol=1e-6)
    with pytest.raises(ValueError, match="other warm-start settings"):
        warm_start.load(directory, dataclasses.replace(SETTINGS, neighbors=5), digest)
    with pytest.raises(ValueError, match="other training images"):
        warm_start.load(directory, SETTINGS, caches.fingerprint(images[1:]))
    meta_path = os.path.join(directory, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    # The key covers the code's constants and the libraries' versions.
    assert meta["settings"]["autoencoder_units"] == list(warm_start.AUTOENCODER_UNITS)
    assert meta["settings"]["keras_version"] == keras.__version__
    with pytest.raises(ValueError, match=r"other warm-start settings \(numpy_version\)"):
        warm_start.load(directory, dataclasses.replace(SETTINGS, numpy_version="1.0"), digest)
    # A cache made before a setting was recorded (no key: its default, today's constant or
    # version) is still this one's; but one that recorded no seeding used the global generators.
    meta["settings"] = {name: meta["settings"][name] for name in (
        "num_components", "autoencoder_steps", "fit_images", "neighbors", "dims", "seed",
        "augment")}
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(ValueError, match=r"other warm-start settings \(seeding\)"):
        warm_start.load(directory, SETTINGS, digest)
    meta["settings"]["seeding"] = warm_start.SEEDING
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    assert warm_start.load(directory, SETTINGS, digest).responsibilities.shape == (150, 3)
    with pytest.raises(ValueError, match="other warm-start settings"):
        warm_start.load(directory, dataclasses.replace(SETTINGS, neighbour_epochs=3), digest)
    meta["settings"]["unknown_setting"] = 1  # from a newer version
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(ValueError, match="other warm-start settings"):
        warm_start.load(directory, SETTINGS, digest)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


def test_replacing_a_cache_leaves_a_readable_one_when_it_fails(blobs_result, tmp_path,
                                                               monkeypatch):
    images, _, result = blobs_result
    directory = str(tmp_path / "warm_start")
    warm_start.save(result, directory, SETTINGS, "old")
    rename = os.rename

    def failing_rename(source, target):  # the new cache's rename into place fails
        if target == directory and not source.endswith(".old"):
            raise OSError("injected")
        rename(source, target)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="injected"):
        warm_start.save(result, directory, SETTINGS, "new")
    warm_start.load(directory, SETTINGS, "old")
    monkeypatch.setattr(os, "rename", rename)
    warm_start.save(result, directory, SETTINGS, "new")
    warm_start.load(directory, SETTINGS, "new")
    assert os.listdir(tmp_path) == ["warm_start"]  # neither the new files nor the old cache left


def test_renumbering_permutes_the_clusters_and_the_mixture(blobs_result):
    images, _, result = blobs_result
    order = [2, 0, 1]
    renumbered = warm_start.permuted(result, order)
    np.testing.assert_array_equal(renumbered.responsibilities, result.responsibilities[:, order])
    np.testing.assert_array_equal(renumbered.weights, result.weights[order])
    np.testing.assert_allclose(renumbered.predict_proba(images[:20]),
                               result.predict_proba(images[:20])[:, order], atol=1e-6)
    messages = []
    back = warm_start.numbered_like(renumbered, result.responsibilities, messages.append)
    np.testing.assert_array_equal(back.responsibilities, result.responsibilities)
    assert "[1, 2, 0]" in messages[0] and "agree on 100%" in messages[0]


def _config(workdir, **overrides):
    return tiny_config(workdir=str(workdir), pcm_init="embedding", warm_start_neighbors=10,
                       warm_start_dims=2, warm_start_autoencoder_steps=150,
                       warm_start_fit_images=120, **overrides)


def test_cache_is_reused_and_a_damaged_one_rebuilt(blobs_result, tmp_path, monkeypatch):
    images, _, result = blobs_result
    config = _config(tmp_path)
    calls = []
    monkeypatch.setattr(warm_start, "compute",
                        lambda *args, **kwargs: calls.append(1) or result)
    first = warm_start.load_or_compute(config, images, log=lambda _: None)
    again = warm_start.load_or_compute(config, images, log=lambda _: None)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.responsibilities, first.responsibilities)
    with open(tmp_path / "warm_start" / "responsibilities.npy", "r+b") as f:
        f.truncate(40)  # as a full disk or a partial copy leaves it
    messages = []
    rebuilt = warm_start.load_or_compute(config, images, log=messages.append)
    assert len(calls) == 2 and "rebuilding" in messages[0]
    np.testing.assert_array_equal(rebuilt.responsibilities, result.responsibilities)
    # Another K makes the cache stale.
    warm_start.load_or_compute(_config(tmp_path, num_components=4), images, log=lambda _: None)
    assert len(calls) == 3


def test_a_cache_that_cannot_be_read_for_permissions_is_refused(blobs_result, tmp_path,
                                                                monkeypatch):
    images, _, result = blobs_result
    config = _config(tmp_path)
    monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: result)
    warm_start.load_or_compute(config, images, log=lambda _: None)
    meta = str(tmp_path / "warm_start" / "meta.json")

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", meta)

    monkeypatch.setattr(warm_start, "load", unreadable)
    with pytest.raises(ConfigError, match=rf"^--workdir: the warm-start cache {meta} cannot be "
                                          r"read \(Permission denied\); fix its permissions, "
                                          r"or move .*warm_start aside to rebuild it$"):
        warm_start.load_or_compute(config, images, log=lambda _: None)


WARM_START_FAULT = next(f for f in FAULTS if f.name == "warm-start cache")


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_warm_start_cache_is_rebuilt(blobs_result, tmp_path, monkeypatch, damage):
    """The cells of docs/FAULTS.md's warm-start row: every cache file damaged the same way, then
    what training does (load_or_compute): one line, a new clustering, the same result."""
    images, _, result = blobs_result
    config = _config(tmp_path)
    monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: result)
    warm_start.load_or_compute(config, images, log=lambda _: None)
    targets = glob.glob(WARM_START_FAULT.pattern.format(W=tmp_path))
    assert len(targets) == 5
    for target in targets:
        DAMAGES[damage](target)
    messages = []
    rebuilt = warm_start.load_or_compute(config, images, log=messages.append)
    assert WARM_START_FAULT.outcomes["train"].expect in messages[0] and len(messages) == 2
    np.testing.assert_array_equal(rebuilt.responsibilities, result.responsibilities)
    again = warm_start.load(str(tmp_path / "warm_start"), with_models=True)
    np.testing.assert_array_equal(again.responsibilities, result.responsibilities)


WARM_START_FULL = next(s for s in SITUATIONS if s.name == "warm-start cache")


def test_a_full_disk_keeps_the_cache_it_replaces(blobs_result, tmp_path, monkeypatch):
    """docs/FAULTS.md's row: the disk fills up while a stale cache is rebuilt (in
    load_or_compute, as training calls it): one line naming the cache, the old one intact and
    no temporary files left; after freeing space, the rebuild succeeds."""
    images, _, result = blobs_result
    with _tmpfs(tmp_path, {}) as disk:
        config = _config(os.path.join(disk, "W"))
        monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: result)
        warm_start.load_or_compute(config, images[1:], log=lambda _: None)

        def fill_then_compute(*args, **kwargs):
            _fill(disk)
            return result

        monkeypatch.setattr(warm_start, "compute", fill_then_compute)
        with pytest.raises(OSError) as failure:  # the images changed: the cache is stale
            warm_start.load_or_compute(config, images, log=lambda _: None)
        expected = WARM_START_FULL.outcomes["train"].expect.format(W=config.workdir)
        assert expected in write_failure(failure.value)
        directory = os.path.join(config.workdir, "warm_start")
        warm_start.load(directory, images_hash=caches.fingerprint(images[1:]))
        assert os.listdir(config.workdir) == ["warm_start"]  # no temporary directory
        os.remove(os.path.join(disk, FILLER))
        monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: result)
        warm_start.load_or_compute(config, images, log=lambda _: None)
        warm_start.load(directory, images_hash=caches.fingerprint(images))


@pytest.mark.parametrize("augment", [False, True])
def test_autoencoder_reconstructs_the_view_it_is_given(augment):
    images, _ = _blobs(per_cluster=4)
    inputs, targets = next(iter(warm_start.autoencoder_batches(images, 12, 1, 0, augment)))
    np.testing.assert_array_equal(inputs.numpy(), targets.numpy())  # target = the same view
    assert inputs.shape == (12, 64)
    flat = images.reshape(len(images), -1)
    # Every row is one of the images (no augment) or a view that is none of them (augment).
    nearest = np.abs(inputs.numpy()[:, None] - flat[None]).max(axis=2).min(axis=1)
    assert (nearest.max() == 0) if not augment else (nearest.min() > 0.05)


def test_too_few_images_is_a_one_line_data_error():
    images, _ = _blobs(per_cluster=3)
    with pytest.raises(DataError, match="too few for the warm start.*--pcm_init=none"):
        warm_start.compute(images, SETTINGS)


def test_pretraining_copies_a_trained_twin_into_the_pcm(blobs_result):
    from gmmgan_tf.gan import GMMGAN

    images, labels, result = blobs_result
    model = GMMGAN(tiny_config(pcm_init="embedding"), images.shape[1:])
    before = [w.copy() for w in model.pcm.get_weights()]
    warm_start.pretrain_pcm(model.pcm, images, result.responsibilities, width_multiplier=0.125,
                            epochs=15, learning_rate=3e-3, seed=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.pcm.get_weights()))
    predicted = model.responsibilities(images).argmax(axis=1)
    assert adjusted_rand_score(labels, predicted) == 1.0


def test_training_resumes_with_the_cached_warm_start(blobs_result, tmp_path, monkeypatch):
    """A fresh run computes the warm start, pre-trains the PCM and sets alpha_k; the resumed run
    reads the cache and keeps the checkpoint's PCM."""
    images, labels, result = blobs_result
    from gmmgan_tf import data as data_lib

    bundle = data_lib.DataBundle("blobs", images[:120], labels[:120], images[120:], labels[120:],
                                 num_classes=3, val_images=images[120:], val_labels=labels[120:])
    monkeypatch.setattr(data_lib, "load", lambda config: bundle)
    config = _config(tmp_path, epochs=1, steps_per_epoch=2, eval_quality=False, ndb_samples=100,
                     pcm_pretrain_epochs=15, learning_rate_c=3e-3)
    metrics = train.train_and_evaluate(config)
    assert metrics["val_pretrained_pcm_acc"] > 0.9 and "val_warm_start_acc" in metrics
    monkeypatch.setattr(warm_start, "compute", lambda *a, **k: pytest.fail("recomputed"))
    resumed = train.train_and_evaluate(dataclasses.replace(config, epochs=2))
    assert "val_pretrained_pcm_acc" not in resumed  # the PCM comes from the checkpoint
    _, _, model = workdir.load_trained_model(str(tmp_path))
    np.testing.assert_allclose(np.exp(model.prior.mixture_logits.numpy()),
                               np.load(tmp_path / "warm_start" / "weights.npy"), rtol=1e-5)


def test_a_resumed_run_numbers_a_rebuilt_cache_as_its_pcm(blobs_result, tmp_path, monkeypatch,
                                                         capsys):
    """The resumed run's cache is damaged and the new clustering numbers the clusters otherwise
    (here: the old one's, permuted); training goes on with the numbering the PCM was pre-trained
    on, and the cache keeps it."""
    images, labels, result = blobs_result
    from gmmgan_tf import data as data_lib

    bundle = data_lib.DataBundle("blobs", images, labels, images[120:], labels[120:],
                                 num_classes=3)
    monkeypatch.setattr(data_lib, "load", lambda config: bundle)
    config = _config(tmp_path, epochs=1, steps_per_epoch=2, eval_quality=False, ndb_samples=100,
                     pcm_pretrain_epochs=15, learning_rate_c=3e-3)
    monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: result)
    train.train_and_evaluate(config)
    os.remove(tmp_path / "warm_start" / "responsibilities.npy")
    order = [1, 2, 0]
    monkeypatch.setattr(warm_start, "compute", lambda *args, **kwargs: dataclasses.replace(
        result, responsibilities=result.responsibilities[:, order], weights=result.weights[order]))
    capsys.readouterr()
    train.train_and_evaluate(dataclasses.replace(config, epochs=2))
    cached = warm_start.load(str(tmp_path / "warm_start"))
    np.testing.assert_array_equal(cached.responsibilities, result.responsibilities)
    np.testing.assert_array_equal(cached.weights, result.weights)
    out = capsys.readouterr().out
    assert "rebuilding" in out and "the new clustering's [2, 0, 1][k]" in out


def test_pseudo_label_loss_matches_numpy():
    rng = np.random.default_rng(0)
    targets = rng.dirichlet(np.ones(4), 5).astype(np.float32)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = np.mean(-(targets * log_softmax).sum(axis=1))
    np.testing.assert_allclose(losses.pseudo_label_loss(targets, logits), expected, rtol=1e-5)


def test_self_label_loss_matches_numpy():
    probs = np.array([[0.97, 0.02, 0.01], [0.5, 0.3, 0.2], [0.01, 0.01, 0.98], [0.2, 0.79, 0.01]],
                     np.float32)
    logits = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    # Only rows 0 and 2 are above 0.95; their labels are 0 and 2; the mean is over all 4 rows.
    expected = -(log_softmax[0, 0] + log_softmax[2, 2]) / 4
    np.testing.assert_allclose(losses.self_label_loss(probs, logits, 0.95), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.self_label_loss(probs, logits, 0.99), 0.0)
    # The target side carries no gradient.
    probs_t = tf.constant(probs)
    with tf.GradientTape() as tape:
        tape.watch(probs_t)
        loss = losses.self_label_loss(probs_t, logits, 0.95)
    assert tape.gradient(loss, probs_t) is None


def test_neighbour_consistency_loss_matches_numpy():
    rng = np.random.default_rng(0)
    anchors = rng.dirichlet(np.ones(3), 4).astype(np.float32)
    neighbours = rng.dirichlet(np.ones(3), 4).astype(np.float32)
    agreement = np.array([anchors[i] @ neighbours[i] for i in range(4)])
    mean = anchors.mean(axis=0)
    expected = -np.log(agreement).mean() + 2.0 * (mean * np.log(mean)).sum()
    np.testing.assert_allclose(losses.neighbour_consistency_loss(anchors, neighbours, 2.0),
                               expected, rtol=1e-5)
    # Confident agreement with every cluster in use costs less than putting all in one cluster.
    spread = np.eye(3, dtype=np.float32)
    collapsed = np.tile(np.float32([[1, 0, 0]]), (3, 1))
    assert (float(losses.neighbour_consistency_loss(spread, spread, 1.0))
            < float(losses.neighbour_consistency_loss(collapsed, collapsed, 1.0)))


def test_neighbour_stage_clusters_and_its_network_is_cached(tmp_path):
    """Stage 4 alone recovers the separated clusters in equal shares; the whole warm start with
    it on keeps the stage's clusters and its network survives the cache."""
    images, labels = _blobs()
    network = warm_start.neighbour_clustering(images, 3, epochs=30, seed=0)  # one batch an epoch
    clusters = network.predict(images, verbose=0).argmax(axis=1)
    assert adjusted_rand_score(labels, clusters) == 1.0
    settings = dataclasses.replace(SETTINGS, neighbour_epochs=30)
    result = warm_start.compute(images, settings, log=lambda _: None)
    assert adjusted_rand_score(labels, result.responsibilities.argmax(axis=1)) == 1.0
    np.testing.assert_allclose(result.weights, result.responsibilities.mean(axis=0), rtol=1e-5)
    new_images, new_labels = _blobs(per_cluster=5, seed=0)
    assert adjusted_rand_score(new_labels, result.predict_proba(new_images).argmax(axis=1)) == 1.0
    directory = str(tmp_path / "warm_start")
    warm_start.save(result, directory, settings, "digest")
    loaded = warm_start.load(directory, settings, "digest", with_models=True)
    np.testing.assert_allclose(loaded.predict_proba(new_images), result.predict_proba(new_images),
                               atol=1e-6)
    with pytest.raises(ValueError, match="other warm-start settings"):
        warm_start.load(directory, SETTINGS, "digest")  # made with the stage, asked without it
    np.testing.assert_allclose(warm_start.permuted(result, [2, 0, 1]).predict_proba(new_images),
                               result.predict_proba(new_images)[:, [2, 0, 1]], atol=1e-6)


def test_train_step_takes_the_pseudo_label_term_on_real_images():
    """With only L^{x,warm} on, one step's logged loss is the cross-entropy of the PCM's logits
    on the batch against the targets, computed by hand before the step."""
    from gmmgan_tf.gan import GMMGAN

    config = tiny_config(adversarial_weight=0.0, latent_consistency_weight=0.0,
                         real_fake_consistency_weight=0.0, pcm_init="embedding")
    model = GMMGAN(config, (28, 28, 1))
    model.compile()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 28, 28, 1)).astype(np.float32)
    targets = rng.dirichlet(np.ones(3), 6).astype(np.float32)
    logits = model.pcm(images, training=True).numpy()
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = np.mean(-(targets * log_softmax).sum(axis=1))
    before = [w.numpy().copy() for w in model.pcm.trainable_variables]
    logs = model.train_step({"images": tf.constant(images), "targets": tf.constant(targets)})
    np.testing.assert_allclose(float(logs["pseudo_label_loss"]), expected, rtol=1e-4)
    assert any(not np.array_equal(b, w.numpy())
               for b, w in zip(before, model.pcm.trainable_variables))


def _global_draws():
    """One draw from each global generator a library function could reset or advance."""
    import random

    return (random.random(), np.random.rand(), float(tf.random.uniform(())),
            float(keras.random.uniform(())))


def test_warm_start_networks_depend_on_their_seed_alone_and_leave_the_global_generators_be():
    """The autoencoder, the neighbour clustering and PCM pre-training draw from `seed` alone:
    the same weights whatever the global seed, and the caller's global generators untouched
    (keras.utils.set_random_seed inside them reset the caller's)."""
    images, _ = _blobs(per_cluster=8)
    targets = np.eye(3, dtype=np.float32)[np.arange(len(images)) % 3]

    def trained(global_seed):
        keras.utils.set_random_seed(global_seed)
        encoder = warm_start.train_autoencoder(images, steps=3, seed=5, augment=True)
        clusterer = warm_start.neighbour_clustering(images, 3, epochs=1, seed=5)
        pcm = warm_start._pcm_shaped(images.shape[1:], 3, 0.125, seed=9)
        warm_start.pretrain_pcm(pcm, images, targets, width_multiplier=0.125, epochs=2,
                                learning_rate=1e-3, seed=5)
        draws = _global_draws()
        keras.utils.set_random_seed(global_seed)
        assert draws == _global_draws(), "a global generator was reset or advanced"
        return [w for net in (encoder, clusterer, pcm) for w in net.get_weights()]

    for a, b in zip(trained(1), trained(2), strict=True):
        np.testing.assert_array_equal(a, b)
