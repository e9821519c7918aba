"""Novelty scorers against NumPy/SciPy on synthetic data with known answers, the
leave-one-class-out data split and its caches, and the detection metrics."""
import dataclasses
import json
import os

import numpy as np
import pytest
from scipy.spatial.distance import cdist, mahalanobis
from scipy.stats import entropy as scipy_entropy, multivariate_normal

from conftest import tiny_config
from gmmgan_tf import data, novelty
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.gan import GMMGAN
from gmmgan_tf.mfa.model import MFA


def _responsibilities(n=50, k=6, seed=0):
    logits = np.random.default_rng(seed).normal(size=(n, k)) * 3
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def test_responsibility_scorers_match_numpy_and_rank_the_known_cases():
    r = _responsibilities()
    scores = novelty.score_all({novelty.RESPONSIBILITIES: r})
    assert set(scores) == {"max_responsibility", "entropy"}
    np.testing.assert_allclose(scores["max_responsibility"], 1 - r.max(1), atol=1e-12)
    np.testing.assert_allclose(scores["entropy"], scipy_entropy(r, axis=1), atol=1e-12)
    # Known answers: a one-hot row is the least novel (0), the uniform row the most (1 - 1/K,
    # log K), and a zero probability adds nothing to the entropy (no NaN).
    k = 4
    known = np.array([[1, 0, 0, 0], [0.7, 0.1, 0.1, 0.1], [0.25] * 4])
    scores = novelty.score_all({novelty.RESPONSIBILITIES: known})
    np.testing.assert_allclose(scores["max_responsibility"], [0, 0.3, 1 - 1 / k], atol=1e-12)
    np.testing.assert_allclose(scores["entropy"][[0, 2]], [0, np.log(k)], atol=1e-12)
    assert np.all(np.diff(scores["entropy"]) > 0)


def test_discriminator_scorer_is_minus_the_best_head():
    logits = np.array([[2.0, -1.0, 0.5], [-3.0, -2.0, -4.0]])
    np.testing.assert_allclose(
        novelty.score("discriminator", {novelty.DISCRIMINATOR_LOGITS: logits}), [-2.0, 2.0])
    single = np.array([[1.5], [-0.5]])  # one head: -D(x)
    np.testing.assert_allclose(
        novelty.score("discriminator", {novelty.DISCRIMINATOR_LOGITS: single}), [-1.5, 0.5])


def _features(n=60, k=3, c=4, seed=0):
    """n features in c dims around k centres, soft responsibilities for them, and images that
    are not like them: (train features, responsibilities, new features)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, c)) * 4
    labels = np.arange(n) % k
    mix = rng.normal(size=(c, c))
    features = centres[labels] + rng.normal(size=(n, c)) @ mix
    r = _responsibilities(n, k, seed) * 0.3 + np.eye(k)[labels] * 0.7
    new = np.concatenate([centres + rng.normal(size=(k, c)), rng.normal(size=(5, c)) * 20])
    return features, r, new


def test_mahalanobis_matches_scipy_with_the_tied_covariance_by_hand():
    """Lee et al.'s score, min_k of scipy's Mahalanobis distance to the responsibility-weighted
    means mu_k under the tied covariance S = 1/N sum_k sum_i r_ik (f_i - mu_k)(f_i - mu_k)^T,
    both computed here term by term."""
    features, r, new = _features()
    fitted = novelty.Fitted(*novelty.fit_component_gaussians(features, r, ridge=0.0), {})
    got = novelty.score("mahalanobis", {novelty.PCM_FEATURES: new}, fitted)
    means = [np.average(features, axis=0, weights=r[:, k]) for k in range(r.shape[1])]
    cov = sum(r[i, k] * np.outer(features[i] - means[k], features[i] - means[k])
              for i in range(len(features)) for k in range(r.shape[1])) / len(features)
    inverse = np.linalg.inv(cov)
    want = [min(mahalanobis(x, mu, inverse) for mu in means) for x in new]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert np.all(got[-5:] > got[:3].max())  # far from every centre: the most novel
    # The ridge adds ridge * tr(S) / c to the diagonal.
    ridged = novelty.Fitted(*novelty.fit_component_gaussians(features, r, ridge=0.1), {})
    inverse = np.linalg.inv(cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov)))
    np.testing.assert_allclose(
        novelty.score("mahalanobis", {novelty.PCM_FEATURES: new}, ridged),
        [min(mahalanobis(x, mu, inverse) for mu in means) for x in new], rtol=1e-9)


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_knn_is_scipys_nearest_unit_neighbour_in_the_projected_training_features():
    """Sun et al.'s k = 1 score: the Euclidean distance (scipy's cdist) from u(h P) to the
    nearest u(h_j P) of the training features h_j; a training image is at distance 0."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(30, 40)) + 3.0
    new = np.concatenate([train[:3], rng.normal(size=(4, 40)) + 3.0, -train[:2]])
    projection, bank = novelty.fit_nearest_neighbours(train, dimensions=8, bank_images=100)
    assert projection.shape == (40, 8) and bank.shape == (30, 8)
    fitted = novelty.Fitted(None, None, {}, projection, bank)
    got = novelty.score("knn", {novelty.PCM_FLAT_FEATURES: new}, fitted)
    p = projection.astype(np.float64)
    want = cdist(_unit(new @ p), _unit(train @ p)).min(axis=1)
    # The bank is float32, and sqrt(2 - 2 u.b) turns its rounding (1e-7) into 1e-4 near 0.
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=5e-4)
    np.testing.assert_allclose(got[:3], 0, atol=5e-4)
    assert got[-2:].min() > got[:-2].max()  # pointing the other way: the most novel
    # P's entries are N(0, 1/m): squared lengths are kept on average (Johnson-Lindenstrauss).
    assert np.var(projection) == pytest.approx(1 / 8, rel=0.1)


def test_knn_bank_is_a_seeded_subset_of_the_training_images():
    train = np.random.default_rng(1).normal(size=(50, 12))
    projection, bank = novelty.fit_nearest_neighbours(train, dimensions=6, bank_images=10)
    assert bank.shape == (10, 6)
    rows = _unit(train @ projection.astype(np.float64))
    matches = cdist(bank, rows).argmin(axis=1)
    np.testing.assert_allclose(bank, rows[matches], atol=1e-6)
    assert len(set(matches)) == 10  # drawn without replacement
    again = novelty.fit_nearest_neighbours(train, dimensions=6, bank_images=10)
    np.testing.assert_array_equal(again[1], bank)


def test_combined_is_the_mean_of_the_standardised_scores():
    features, r, new = _features()
    train = {novelty.PCM_FEATURES: features, novelty.RESPONSIBILITIES: r}
    validation = {novelty.PCM_FEATURES: new[:3] + 0.1, novelty.RESPONSIBILITIES: r[:3]}
    fitted = novelty.fit(train, validation)
    scored = {novelty.PCM_FEATURES: new, novelty.RESPONSIBILITIES: _responsibilities(len(new))}
    parts = []
    for name in novelty.COMBINED:
        on_validation = novelty.score(name, validation, fitted)
        parts.append((novelty.score(name, scored, fitted) - on_validation.mean())
                     / on_validation.std())
    np.testing.assert_allclose(novelty.score("combined", scored, fitted), np.mean(parts, axis=0),
                               rtol=1e-9)
    with pytest.raises(ValueError, match="'combined' needs fitted parameters"):
        novelty.score("combined", scored)


def test_knn_mahalanobis_is_the_larger_standardised_score():
    features, r, new = _features()
    flat = np.random.default_rng(3).normal(size=(len(features) + 10 + len(new), 20))
    train = {novelty.PCM_FEATURES: features, novelty.RESPONSIBILITIES: r,
             novelty.PCM_FLAT_FEATURES: flat[:len(features)]}
    validation = {novelty.PCM_FEATURES: features[:10] + 0.5, novelty.RESPONSIBILITIES: r[:10],
                  novelty.PCM_FLAT_FEATURES: flat[len(features):len(features) + 10]}
    fitted = novelty.fit(train, validation)
    scored = {novelty.PCM_FEATURES: new, novelty.PCM_FLAT_FEATURES: flat[-len(new):]}
    parts = []
    for name in ("knn", "mahalanobis"):
        on_validation = novelty.score(name, validation, fitted)
        parts.append((novelty.score(name, scored, fitted) - on_validation.mean())
                     / on_validation.std())
    parts = np.array(parts)
    assert (parts[0] > parts[1]).any() and (parts[1] > parts[0]).any()  # each wins somewhere
    np.testing.assert_allclose(novelty.score("knn_mahalanobis", scored, fitted),
                               parts.max(axis=0), rtol=1e-9)


def test_missing_output_names_the_scorer():
    with pytest.raises(ValueError, match="'mfa_nll' needs the model output 'log_likelihood'"):
        novelty.score("mfa_nll", {novelty.RESPONSIBILITIES: _responsibilities()})


def test_mfa_nll_is_the_gaussian_negative_log_density_and_flags_the_outlier():
    """One factor analyzer is the Gaussian N(mu, A A^T + diag D): -log p(x) from SciPy."""
    rng = np.random.default_rng(0)
    d, l = 9, 2
    mu, a, dd = rng.normal(size=(1, d)), rng.normal(size=(1, d, l)), rng.uniform(.1, .5, (1, d))
    model = MFA(np.ones(1), mu, a, dd)
    x = np.concatenate([mu + rng.normal(size=(20, d)) * 0.3, mu + 6.0])  # the last: far away
    outputs = novelty.mfa_outputs(model, x.reshape(-1, 3, 3, 1))
    nll = novelty.score("mfa_nll", outputs)
    reference = -multivariate_normal(mu[0], a[0] @ a[0].T + np.diag(dd[0])).logpdf(x)
    np.testing.assert_allclose(nll, reference, rtol=1e-4)
    assert nll.argmax() == len(x) - 1
    np.testing.assert_allclose(novelty.score("max_responsibility", outputs), 0, atol=1e-6)


def test_embedding_density_reads_the_warm_start_cache(tmp_path):
    """A warm-start cache (warm_start.save) of a known pipeline: encoder = identity on the 4
    pixels, PCA as the reducer, a 2-component GaussianMixture; the scores are -log p of the
    embeddings, and an image far from both clusters is the most novel."""
    import keras
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from gmmgan_tf import warm_start

    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(-0.5, 0.05, (40, 4)), rng.normal(0.5, 0.05, (40, 4))])
    inputs = keras.Input((4,))
    encoder = keras.Model(inputs, keras.layers.Identity()(inputs))
    reducer = PCA(2).fit(train)
    mixture = GaussianMixture(2, random_state=0).fit(reducer.transform(train))
    result = warm_start.WarmStart(mixture.predict_proba(reducer.transform(train)).astype(
        np.float32), mixture.weights_, {}, encoder, reducer, mixture)
    settings = warm_start.Settings(2, 1, 80, 5, 2, 0)
    warm_start.save(result, str(tmp_path / "warm_start"), settings, "hash")
    images = np.concatenate([train[:3], [[0.0, 0.0, 0.0, 0.9]]]).reshape(-1, 2, 2, 1)
    scores = novelty.score("embedding_density", novelty.warm_start_outputs(
        str(tmp_path / "warm_start"), images.astype(np.float32)))
    reference = -mixture.score_samples(reducer.transform(images.reshape(4, 4)))
    np.testing.assert_allclose(scores, reference, rtol=1e-4)
    assert scores.argmax() == 3


def test_gmmgan_outputs_are_the_heads_logits_and_the_pcm():
    model = GMMGAN(tiny_config(), (28, 28, 1))
    images = np.random.default_rng(0).uniform(-1, 1, (7, 28, 28, 1)).astype(np.float32)
    outputs = novelty.gmmgan_outputs(model, images, batch_size=3)
    np.testing.assert_allclose(outputs[novelty.DISCRIMINATOR_LOGITS],
                               model.discriminator(images, training=False).numpy(), atol=1e-6)
    assert outputs[novelty.DISCRIMINATOR_LOGITS].shape == (7, 3)  # per-component heads
    np.testing.assert_allclose(outputs[novelty.RESPONSIBILITIES],
                               model.responsibilities(images), atol=1e-6)
    np.testing.assert_allclose(outputs[novelty.PCM_FLAT_FEATURES],
                               model.pcm.encoder(images).numpy(), atol=1e-6)
    maps = images
    for layer in model.pcm.encoder.net.layers[:-1]:  # the last convolution's maps, unflattened
        maps = layer(maps).numpy()
    np.testing.assert_allclose(outputs[novelty.PCM_FEATURES], np.concatenate(
        [maps.mean(axis=(1, 2)), maps.std(axis=(1, 2))], axis=1), atol=1e-5)
    baseline = GMMGAN(tiny_config(model="gaussian"), (28, 28, 1))
    assert set(novelty.score_all(novelty.gmmgan_outputs(baseline, images))) == {"discriminator"}


def test_flag_threshold_flags_the_share_of_training_scores():
    train = np.random.default_rng(0).permutation(1000).astype(float)
    threshold = novelty.flag_threshold(train, 0.05)
    assert np.sum(train > threshold) == 50


def test_served_novelty_reports_its_calibration_and_the_flag_rate_of_the_trained_classes():
    """metrics.json's record of the served score: fitted on the training images, calibrated on
    the validation images (5 % of 20 flagged), and the share of the test images of the trained
    classes flagged (the excluded class 1 is novel, so it does not count)."""
    from gmmgan_tf import evaluation

    model = GMMGAN(tiny_config(), (28, 28, 1))
    images = np.random.default_rng(0).uniform(-1, 1, (100, 28, 28, 1)).astype(np.float32)
    labels = np.arange(100) % 2
    bundle = data.DataBundle("toy", images[:40], np.zeros(40, np.int64), images[60:],
                             labels[60:], num_classes=2, excluded_classes=(1,),
                             val_images=images[40:60], val_labels=np.zeros(20, np.int64))
    calibration = novelty.calibrate(model, bundle)
    test_outputs = novelty.gmmgan_outputs(model, bundle.test_images)
    out = evaluation.served_novelty(calibration, test_outputs, bundle)
    scores = novelty.score(novelty.SERVED_SCORER, test_outputs, calibration.fitted)
    assert out["novelty_test_flag_rate"] == np.mean(scores[labels[60:] == 0]
                                                    > calibration.threshold)
    assert {k: out[k] for k in ("novelty_scorer", "novelty_flag_share", "novelty_fit_split",
                                "novelty_fit_images", "novelty_calibration_split",
                                "novelty_calibration_images", "novelty_test_images")} == {
        "novelty_scorer": novelty.SERVED_SCORER, "novelty_flag_share": 0.05,
        "novelty_fit_split": "train", "novelty_fit_images": 40,
        "novelty_calibration_split": "validation", "novelty_calibration_images": 20,
        "novelty_test_images": 20}
    validation = novelty.score(novelty.SERVED_SCORER, novelty.gmmgan_outputs(
        model, bundle.val_images), calibration.fitted)
    assert np.sum(validation > out["novelty_threshold"]) == 1


def test_detection_metrics_against_pair_counting():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.3, 0.5])
    out = novelty.detection_metrics({"s": scores, "perfect": (labels == 2).astype(float)},
                                    labels, (2,))
    positives = labels == 2
    # AUROC = share of (positive, negative) pairs ranked right.
    pairs = [(p > n) for p in scores[positives] for n in scores[~positives]]
    assert out["novelty_auroc_s"] == pytest.approx(np.mean(pairs))
    # AP by hand: ranked by score, positives at ranks 1 (0.9) and 7 (0.2): (1/1 + 2/7) / 2.
    assert out["novelty_auprc_s"] == pytest.approx((1 + 2 / 7) / 2)
    assert out["novelty_auroc_perfect"] == 1.0 and out["novelty_auprc_perfect"] == 1.0
    assert (out["novelty_positives"], out["novelty_negatives"]) == (2, 6)
    fpr, tpr = out["novelty_roc_s"]
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    with pytest.raises(ValueError, match="both the classes"):
        novelty.detection_metrics({"s": scores}, labels, (7,))


# --- leave-one-class-out data -----------------------------------------------------------------

def _config(**kwargs) -> Config:
    return dataclasses.replace(Config(), **kwargs)


@pytest.mark.parametrize("text", ["a", "3,3", "-1", "3;5"])
def test_bad_exclude_classes_text_is_a_config_error(text):
    with pytest.raises(ConfigError, match="--exclude_classes: want comma-separated"):
        _config(exclude_classes=text).validate()


def test_exclusion_checks_the_classes_of_the_data_set():
    labels = np.repeat(np.arange(3), 4)
    images = np.arange(12, dtype=np.float32).reshape(-1, 1, 1, 1)
    bundle = data.DataBundle("toy", images, labels, images[:3], labels[:3], num_classes=3)
    with pytest.raises(ConfigError, match=r"--exclude_classes: class 3 does not exist in toy "
                                          r"\(classes 0-2\)"):
        data.exclude_classes(bundle, (1, 3))
    with pytest.raises(ConfigError, match="leaves no training images of toy"):
        data.exclude_classes(bundle, (0, 1, 2))
    out = data.exclude_classes(bundle, (1,))
    np.testing.assert_array_equal(out.train_images.ravel(), [0, 1, 2, 3, 8, 9, 10, 11])
    assert data.exclude_classes(bundle, ()) is bundle


def test_exclusion_drops_training_images_only_and_keeps_caches_apart(tmp_path):
    """Only the training images lose classes 3 and 5. NDB bins are keyed by the bundle's name
    (the excluded set's own); the domain classifier learns from the whole set, so nothing fitted
    on the reduced images is cached under the plain name mnist_5k."""
    from gmmgan_tf.evaluation import classifier_data
    from gmmgan_tf.mfa.train import data_ndb

    # No validation split: it is carved after the exclusion (data_test checks that), so the
    # images compared below would differ by the carve.
    config = _config(exclude_classes="3,5", ndb_bins=5, metrics_cache_dir=str(tmp_path),
                     validation_fraction=0.0)
    assert config.validate().excluded_classes == (3, 5)
    bundle = data.load(config)
    whole = classifier_data(bundle, config)
    assert bundle.name == "mnist_5k_without_3_5" and bundle.excluded_classes == (3, 5)
    assert whole.name == "mnist_5k" and whole.excluded_classes == ()
    np.testing.assert_array_equal(np.bincount(bundle.train_labels, minlength=10),
                                  [400, 400, 400, 0, 400, 0, 400, 400, 400, 400])
    np.testing.assert_array_equal(bundle.train_images, whole.train_images[
        ~np.isin(whole.train_labels, [3, 5])])
    np.testing.assert_array_equal(bundle.test_labels, whole.test_labels)
    np.testing.assert_array_equal(bundle.test_images, whole.test_images)
    data_ndb(config, bundle)
    assert [f.startswith("ndb_mnist_5k_without_3_5_") for f in os.listdir(tmp_path)] == [True]


# --- end to end: train without a digit, evaluate, export, serve -------------------------------

@pytest.mark.slow  # 50 real training steps, three data loads: 2 minutes on loaded cores
def test_leave_one_digit_out_end_to_end(tmp_path):
    """A short real training on mnist_5k without the 0s; --mode=evaluate writes the detection
    numbers and the ROC figure; the export, read by the TF1 loader TF Serving uses, scores the
    held-out 0s higher on average than the held-out digits it was trained on, and the served
    scores give the AUROC the evaluation reported for that scorer."""
    from sklearn.metrics import roc_auc_score

    from export_test import TF1Model
    from gmmgan_tf import export, modes, train

    workdir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved")
    # The served scorer reads the PCM, so the PCM must have learnt clusters: a short warm start
    # (as in the default recipe) gives it nine, one a trained digit.
    config = tiny_config(workdir=workdir, exclude_classes="0", num_components=9, latent_dim=8,
                         batch_size=16, epochs=1, steps_per_epoch=50, eval_every=0,
                         eval_quality=False, export_dir=export_dir, pcm_init="embedding",
                         warm_start_autoencoder_steps=300, pcm_pretrain_epochs=2)
    train.train_and_evaluate(config)
    modes.evaluate(dataclasses.replace(config, mode="evaluate"))
    metrics = json.load(open(os.path.join(workdir, "eval", "metrics.json")))
    assert os.path.getsize(os.path.join(workdir, "eval", "novelty_roc.png")) > 0
    assert (metrics["novelty_positives"], metrics["novelty_negatives"]) == (100, 900)
    assert {f"novelty_auroc_{s}" for s in ("max_responsibility", "entropy", "discriminator",
                                           "mahalanobis", "combined")} <= set(metrics)
    assert (metrics["novelty_calibration_split"], metrics["novelty_calibration_images"],
            metrics["novelty_test_images"]) == ("validation", 360, 900)
    export.export(dataclasses.replace(config, mode="export"))
    test = data.load(config)
    served = TF1Model(os.path.join(export_dir, "gmmgan_pcm", "1")).run(
        "serving_default", {"images": test.test_images})["novelty"]
    novel = test.test_labels == 0
    assert served[novel].mean() > served[~novel].mean()
    assert roc_auc_score(novel, served) == pytest.approx(
        metrics[f"novelty_auroc_{export.NOVELTY_SCORER}"], abs=1e-3)
