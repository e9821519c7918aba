"""--mode=export: SavedModels read back by TF2 and by the TF1 loader TF Serving uses, the
PredictRequest round trip, input validation, atomic versions, and a live model server."""
import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from conftest import tiny_config, without_tensorflow
from gmmgan_tf import data, export, novelty, provenance, serving_client, workdir as wd
from gmmgan_tf.config import Config, ConfigError
from gmmgan_tf.data_core import DataBundle
from gmmgan_tf.gan import GMMGAN

IMAGE_SHAPE = (28, 28, 1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5
# Novelty scores are unbounded float32 sums (a Mahalanobis distance, standardised differences):
# the graph and NumPy's float64 round differently by ~1e-5 of their size.
NOVELTY_TOL = 1e-4


def trained_model(**overrides):
    """A tiny model after one step, so that BatchNorm's moving statistics are not the init."""
    model = GMMGAN(tiny_config(**overrides), IMAGE_SHAPE)
    model.compile()
    model.train_step(tf.random.uniform((6, *IMAGE_SHAPE), -1.0, 1.0, seed=1))
    return model


# Stands in for a run's data: the fitted scorers are fitted on its training images, the
# threshold calibrated on its validation images (5 % of 40 is 2).
_RANDOM = np.random.default_rng(9).uniform(-1, 1, (100, *IMAGE_SHAPE)).astype(np.float32)
VALIDATION = _RANDOM[:40]
BUNDLE = DataBundle("toy", _RANDOM[40:], np.zeros(60, np.int64), _RANDOM[:0],
                    np.zeros(0, np.int64), num_classes=1, val_images=VALIDATION,
                    val_labels=np.zeros(40, np.int64))


@functools.cache
def calibration_of(model, scorer=export.NOVELTY_SCORER):
    return novelty.calibrate(model, BUNDLE, scorer)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = trained_model()
    export_dir = str(tmp_path_factory.mktemp("saved_models"))
    return model, export_dir, export.export_model(model, export_dir, calibration_of(model))


def novelty_outputs(model, floats):
    """The served scorer in memory, and the threshold as the 95 % quantile of the validation
    images' scores."""
    calibration = calibration_of(model)
    scores = novelty.score(calibration.scorer, novelty.gmmgan_outputs(model, floats),
                           calibration.fitted)
    threshold = np.quantile(novelty.score(calibration.scorer, novelty.gmmgan_outputs(
        model, VALIDATION), calibration.fitted), 0.95)
    return {"novelty": scores, "novelty_threshold": np.full(len(floats), threshold),
            "is_novel": scores > threshold}


def inputs(model, n=5, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
    components = (np.arange(n) % model.num_components).astype(np.int32)
    pixels = rng.integers(0, 256, (n, *IMAGE_SHAPE)).astype(np.uint8)
    return z, components, pixels


def expected(model, z, components, pixels):
    """What the in-memory model gives for every signature."""
    floats = pixels.astype(np.float32) / 127.5 - 1.0
    probs = model.responsibilities(floats)
    pcm = {"responsibilities": probs, "component": probs.argmax(1),
           **novelty_outputs(model, floats)}
    return {
        ("gmmgan_generator", "serving_default"): {
            "images": model.generator(z, training=False).numpy()},
        ("gmmgan_generator", "sample_component"): {"images": model.generate(components, z)},
        ("gmmgan_pcm", "serving_default"): pcm,
        ("gmmgan_pcm", "serving_uint8"): pcm,
    }


def feeds(z, components, pixels):
    return {("gmmgan_generator", "serving_default"): {"z": z},
            ("gmmgan_generator", "sample_component"): {"component": components, "eps": z},
            ("gmmgan_pcm", "serving_default"): {"images": pixels / np.float32(127.5) - 1},
            ("gmmgan_pcm", "serving_uint8"): {"images": pixels}}


class TF1Model:
    """A SavedModel in a TF1 graph and session: the loader tensorflow_model_server uses."""

    def __init__(self, path):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signatures = meta.signature_def

    def run(self, signature, feed):
        sig = self.signatures[signature]
        names = sorted(sig.outputs)
        values = self.session.run([sig.outputs[n].name for n in names],
                                  {sig.inputs[k].name: v for k, v in feed.items()})
        return dict(zip(names, values))


@pytest.fixture(scope="module")
def tf1_models(exported):
    _, _, written = exported
    return {name: TF1Model(path) for name, path in written.items()}


def check_outputs(got, want):
    assert set(got) == set(want)
    for key, value in want.items():
        if key == "is_novel":  # a score within rounding of the threshold may flip
            close = np.abs(want["novelty"] - want["novelty_threshold"]) < NOVELTY_TOL
            np.testing.assert_array_equal(np.asarray(got[key])[~close], value[~close])
        elif key in ("novelty", "novelty_threshold"):
            np.testing.assert_allclose(np.asarray(got[key]), value, atol=NOVELTY_TOL,
                                       rtol=NOVELTY_TOL)
        else:
            np.testing.assert_allclose(np.asarray(got[key]), value, atol=TOL, rtol=0)
    if "responsibilities" in got:
        np.testing.assert_allclose(np.sum(got["responsibilities"], 1), 1.0, atol=TOL)
        assert np.asarray(got["component"]).dtype == np.int64
    if "is_novel" in got:
        assert np.asarray(got["is_novel"]).dtype == bool


def test_layout_versions_and_models_config(exported):
    model, export_dir, written = exported
    assert written == {name: os.path.join(export_dir, name, "1")
                       for name in ("gmmgan_generator", "gmmgan_pcm")}
    with open(os.path.join(written["gmmgan_pcm"], export.METADATA)) as f:
        metadata = json.load(f)
    assert metadata == json.loads(json.dumps(calibration_of(model).metadata()))
    assert (metadata["novelty_calibration_split"], metadata["novelty_calibration_images"],
            metadata["novelty_flag_share"], metadata["novelty_fit_images"]) == (
        "validation", 40, 0.05, 60)
    config = open(os.path.join(export_dir, "models.config")).read()
    for name in written:
        assert f'base_path: "{os.path.abspath(os.path.join(export_dir, name))}"' in config
    assert config.startswith("model_config_list {") and config.count("config {") == 2


def test_tf2_load_matches_in_memory_model(exported):
    model, _, written = exported
    z, components, pixels = inputs(model)
    want = expected(model, z, components, pixels)
    loaded = {name: tf.saved_model.load(path) for name, path in written.items()}
    for (name, signature), feed in feeds(z, components, pixels).items():
        fn = loaded[name].signatures[signature]
        got = {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in feed.items()}).items()}
        check_outputs(got, want[name, signature])


def test_tf1_loader_matches_in_memory_model(exported, tf1_models):
    model, _, _ = exported
    z, components, pixels = inputs(model, seed=1)
    want = expected(model, z, components, pixels)
    for (name, signature), feed in feeds(z, components, pixels).items():
        check_outputs(tf1_models[name].run(signature, feed), want[name, signature])


def test_predict_request_response_round_trip(exported, tf1_models):
    """The client's PredictRequest, decoded as the server does, run, and sent back."""
    model, _, _ = exported
    _, _, pixels = inputs(model, n=3, seed=2)
    request = predict_pb2.PredictRequest.FromString(
        serving_client.build_predict_request(pixels).SerializeToString())
    assert (request.model_spec.name, request.model_spec.signature_name) == (
        "gmmgan_pcm", "serving_uint8")
    feed = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    assert feed["images"].dtype == np.uint8
    outputs = tf1_models["gmmgan_pcm"].run(request.model_spec.signature_name, feed)
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    got = serving_client.parse_predict_response(
        predict_pb2.PredictResponse.FromString(response.SerializeToString()))
    want = expected(model, *inputs(model, n=3, seed=2))[("gmmgan_pcm", "serving_uint8")]
    check_outputs(got, want)
    # The REST form carries the same numbers as JSON.
    body = json.loads(json.dumps(serving_client.rest_body(pixels)))
    np.testing.assert_array_equal(np.asarray(body["inputs"]["images"], np.uint8), pixels)


@pytest.mark.parametrize("scorer", ["entropy", "max_responsibility", "discriminator",
                                    "mahalanobis", "combined", "knn",
                                    "knn_mahalanobis"])
def test_each_gmmgan_scorer_is_served_as_evaluated(exported, tmp_path, scorer):
    """Whichever scorer NOVELTY_SCORER names, the TF1-loaded PCM serves every output as
    novelty.score computes it in memory, the fitted parameters as graph constants (the
    discriminator one exports D's heads inside the PCM)."""
    model = exported[0]
    calibration = calibration_of(model, scorer)
    written = export.write_versions({"pcm": export.pcm_archive(model, calibration)},
                                    str(tmp_path), 1)
    floats = inputs(model, n=6, seed=2)[2].astype(np.float32) / 127.5 - 1.0
    served = TF1Model(written["pcm"])
    got = served.run("serving_default", {"images": floats})
    want = novelty.score(scorer, novelty.gmmgan_outputs(model, floats), calibration.fitted)
    probs = model.responsibilities(floats)
    check_outputs(got, {"responsibilities": probs, "component": probs.argmax(1),
                        "novelty": want, "novelty_threshold": np.full(6, calibration.threshold),
                        "is_novel": want > calibration.threshold})
    got = served.run("serving_default", {"images": VALIDATION})
    assert np.sum(got["is_novel"]) == 2  # 5 % of 40


def test_served_threshold_flags_five_percent_of_the_validation_images(tf1_models):
    got = tf1_models["gmmgan_pcm"].run("serving_default", {"images": VALIDATION})
    assert np.sum(got["is_novel"]) == 2  # 5 % of 40
    assert np.all(got["novelty_threshold"] == got["novelty_threshold"][0])


@pytest.mark.parametrize("scorer", sorted({export.NOVELTY_SCORER, "mahalanobis"}))
def test_served_flag_rate_on_held_out_digits_is_the_flag_share(tmp_path, scorer):
    """Calibrated on the 400 validation digits, the served is_novel flags FLAG_SHARE of the 1,000
    held-out test digits within binomial noise (3 standard deviations of the difference of two
    shares). The Gaussians are fitted on 100 training digits in 16 dimensions, so those digits
    sit closer to their means than new ones, as a trained PCM is most confident on its training
    images: a threshold set on them flags far more new digits."""
    model = trained_model()
    bundle = data.load(tiny_config())
    bundle = dataclasses.replace(bundle, train_images=bundle.train_images[:100],
                                 train_labels=bundle.train_labels[:100])
    written = export.export_model(model, str(tmp_path), novelty.calibrate(model, bundle, scorer))
    got = TF1Model(written["gmmgan_pcm"]).run("serving_default", {"images": bundle.test_images})
    p, n, v = novelty.FLAG_SHARE, len(bundle.test_images), bundle.num_validation
    assert abs(np.mean(got["is_novel"]) - p) < 3 * np.sqrt(p * (1 - p) * (1 / n + 1 / v))


def test_export_without_calibration_keeps_the_old_outputs(tmp_path):
    """Exports made before the novelty outputs (or without training images) serve only
    responsibilities and component, and the client still prints them."""
    model = trained_model()
    written = export.export_model(model, str(tmp_path))
    pixels = inputs(model, n=2)[2]
    got = TF1Model(written["gmmgan_pcm"]).run("serving_uint8", {"images": pixels})
    assert set(got) == {"responsibilities", "component"}
    table = serving_client.format_table(["a", "b"], got)
    assert table.splitlines()[0].startswith("image\tcomponent\tp0") and "NOVEL" not in table


def test_client_prints_novelty_and_marks_images_above_the_threshold():
    outputs = {"responsibilities": np.array([[0.9, 0.1], [0.5, 0.5]]),
               "component": np.array([0, 0]), "novelty": np.array([0.1, 0.5]),
               "novelty_threshold": np.array([0.3, 0.3]), "is_novel": np.array([False, True])}
    lines = serving_client.format_table(["a.png", "b.png"], outputs).splitlines()
    assert lines[0] == "image\tcomponent\tnovelty\tnovel\tp0\tp1"
    assert lines[1] == "a.png\t0\t0.100\t-\t0.900\t0.100"
    assert lines[2] == "b.png\t0\t0.500\tNOVEL\t0.500\t0.500"
    assert lines[3].startswith("# novelty > 0.300 marks NOVEL")


# [0, 1] images: valid [-1, 1] values, but other images, so refused rather than misread.
UNIT_FLOATS = np.random.default_rng(3).uniform(0, 1, (2, *IMAGE_SHAPE)).astype(np.float32)
MALFORMED = [
    # (model, signature, feed, fragment of the message)
    ("gmmgan_pcm", "serving_default", {"images": np.zeros((28, 28, 1), np.float32)},
     "images must have rank 4"),
    ("gmmgan_pcm", "serving_uint8", {"images": np.zeros((2, 28, 28, 3), np.uint8)},
     "images must have 1 channel(s)"),
    ("gmmgan_pcm", "serving_uint8", {"images": np.zeros((2, 32, 32, 1), np.uint8)},
     "images must be 28x28 pixels"),
    ("gmmgan_pcm", "serving_default", {"images": np.full((2, 28, 28, 1), 255, np.float32)},
     "float images must be in [-1, 1]"),
    ("gmmgan_pcm", "serving_default", {"images": UNIT_FLOATS}, "look like [0, 1] images"),
    ("gmmgan_generator", "serving_default", {"z": np.zeros((2, 5), np.float32)},
     "z must be [N, 4]"),
    ("gmmgan_generator", "sample_component",
     {"component": np.array([0, 3], np.int32), "eps": np.zeros((2, 4), np.float32)},
     "component ids must be in [0, 3)"),
    ("gmmgan_generator", "sample_component",
     {"component": np.array([0], np.int32), "eps": np.zeros((2, 4), np.float32)},
     "must have the same N"),
]


@pytest.mark.parametrize("name, signature, feed, fragment", MALFORMED)
def test_malformed_inputs_fail_with_the_message(exported, tf1_models, name, signature, feed,
                                                fragment):
    _, _, written = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=fragment.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[")):
        tf1_models[name].run(signature, feed)
    fn = tf.saved_model.load(written[name]).signatures[signature]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        fn(**{k: tf.constant(v) for k, v in feed.items()})
    assert fragment in str(error.value)


def test_float_signature_applies_the_shared_rule(exported):
    """The by-hand cases of image_range_test through the exported float signature: refused with
    the message image_range.refusal gives (as the client and --mode=assign do), or answered."""
    from image_range_test import CASES

    _, _, written = exported
    fn = tf.saved_model.load(written["gmmgan_pcm"]).signatures["serving_default"]
    for what, batch, message in CASES:
        if batch.dtype != np.float32:
            continue
        if message is None:
            assert fn(images=tf.constant(batch))["responsibilities"].shape[0] == len(batch), what
            continue
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            fn(images=tf.constant(batch))
        assert f"assertion failed: [{message}]" in str(error.value), what


# Malformed requests of the load test below: (signature, images, fragment of the message).
MALFORMED_PCM = [(signature, feed["images"], fragment)
                 for name, signature, feed, fragment in MALFORMED if name == "gmmgan_pcm"] + [
    ("serving_default", np.full((2, 28, 28, 1), np.nan, np.float32), "must be finite"),
    # 0..255 pixels sent to the float signature (the wrong dtype for it): refused, not rescaled.
    ("serving_default", np.full((1, 28, 28, 1), 200, np.uint8), "(0..255 pixels as floats?)"),
]
THREADS, REQUESTS_PER_THREAD = 8, 20


def test_concurrent_requests_with_malformed_ones(exported, tf1_models):
    """The PCM loaded once by the TF1 loader TF Serving uses, one session shared by 8 threads of
    20 requests each (as a server shares it between connections), every fourth one malformed:
    each good request gets the single-threaded answer (and the in-memory model's), each bad one
    its message, and neither kind disturbs the other."""
    from concurrent.futures import ThreadPoolExecutor

    model, _, _ = exported
    pcm = tf1_models["gmmgan_pcm"]
    rng = np.random.default_rng(5)
    requests = []  # (signature, images, fragment or None)
    for i in range(THREADS * REQUESTS_PER_THREAD):
        if i % 4 == 3:
            requests.append(MALFORMED_PCM[(i // 4) % len(MALFORMED_PCM)])
        else:
            pixels = rng.integers(0, 256, (1 + i % 5, *IMAGE_SHAPE)).astype(np.uint8)
            requests.append(("serving_uint8", pixels, None) if i % 2 else
                            ("serving_default", pixels / np.float32(127.5) - 1, None))
    single = [pcm.run(signature, {"images": images}) if fragment is None else None
              for signature, images, fragment in requests]

    def serve(indices):
        answers = {}
        for i in indices:
            signature, images, _ = requests[i]
            try:
                answers[i] = pcm.run(signature, {"images": images})
            except tf.errors.InvalidArgumentError as e:
                answers[i] = e
        return answers

    answers = {}
    with ThreadPoolExecutor(THREADS) as pool:
        # Interleaved, so that good and bad requests run at the same time on every thread.
        for future in [pool.submit(serve, range(t, len(requests), THREADS))
                       for t in range(THREADS)]:
            answers.update(future.result(timeout=300))
    assert sorted(answers) == list(range(len(requests)))
    for i, (signature, images, fragment) in enumerate(requests):
        if fragment is not None:
            assert isinstance(answers[i], tf.errors.InvalidArgumentError), (i, fragment)
            assert fragment in answers[i].message, (i, answers[i].message[:300])
            continue
        assert isinstance(answers[i], dict), (i, answers[i])
        for key, value in single[i].items():
            np.testing.assert_array_equal(answers[i][key], value, err_msg=f"request {i} {key}")
        floats = images.astype(np.float32) / 127.5 - 1.0 if images.dtype == np.uint8 else images
        probs = model.responsibilities(floats)
        check_outputs(answers[i], {"responsibilities": probs, "component": probs.argmax(1),
                                   **novelty_outputs(model, floats)})


def test_wrong_dtype_is_refused_by_the_signature(exported):
    _, _, written = exported
    fn = tf.saved_model.load(written["gmmgan_pcm"]).signatures["serving_uint8"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor"):
        fn(images=tf.zeros((1, 28, 28, 1), tf.int32))


@pytest.mark.parametrize("images, fragment", [
    (np.zeros((28, 28, 1), np.uint8), "rank 4"),
    (np.zeros((1, 28, 28, 3), np.uint8), "wrong channel(s)"),
    (np.zeros((1, 32, 32, 1), np.uint8), "wrong pixels"),
    (np.zeros((1, 28, 28, 1), np.int32), "uint8 pixels or floats"),
    (np.full((1, 28, 28, 1), 200.0), "in [-1, 1]"),
    (UNIT_FLOATS, "x * 2 - 1 for [0, 1] images"),
])
def test_client_validates_before_sending(images, fragment):
    with pytest.raises(serving_client.ClientError) as error:
        serving_client.validate_images(images, IMAGE_SHAPE)
    assert fragment in str(error.value)


def test_client_reads_pngs_and_npy(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    paths = []
    for i, p in enumerate(pixels):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(p).save(paths[-1])
    np.testing.assert_array_equal(serving_client.load_images(paths).images, pixels[..., None])
    np.save(tmp_path / "batch.npy", pixels[..., None])
    batch = serving_client.load_images([str(tmp_path / "batch.npy")]).images
    assert serving_client.signature_for(serving_client.validate_images(batch)) == "serving_uint8"


class _Failing:
    """An archive whose write dies half-way through, as a full disk or a kill would."""

    def write_out(self, path, verbose=False):
        os.makedirs(os.path.join(path, "variables"))
        open(os.path.join(path, "saved_model.pb"), "wb").write(b"partial")
        raise OSError("disk full")


def test_failed_export_leaves_previous_version_untouched(tmp_path, monkeypatch):
    model = trained_model()
    export_dir = str(tmp_path)
    export.export_model(model, export_dir)
    before = {name: open(os.path.join(export_dir, name, "1", "saved_model.pb"), "rb").read()
              for name in ("gmmgan_generator", "gmmgan_pcm")}
    monkeypatch.setattr(export, "pcm_archive", lambda *args: _Failing())
    with pytest.raises(OSError, match="disk full"):
        export.export_model(model, export_dir)
    for name, pb in before.items():
        # Neither model got version 2 (the generator's was written but never renamed).
        assert sorted(os.listdir(os.path.join(export_dir, name))) == ["1"]
        assert open(os.path.join(export_dir, name, "1", "saved_model.pb"), "rb").read() == pb
    monkeypatch.undo()
    written = export.export_model(model, export_dir)
    assert {os.path.basename(p) for p in written.values()} == {"2"}


def test_baseline_exports_the_generator_only(tmp_path):
    model = trained_model(model="gaussian")
    written = export.export_model(model, str(tmp_path))
    assert list(written) == ["gmmgan_generator"]
    assert "gmmgan_pcm" not in open(tmp_path / "models.config").read()
    z = np.random.default_rng(0).standard_normal((3, model.latent_dim)).astype(np.float32)
    fn = tf.saved_model.load(written["gmmgan_generator"]).signatures["sample_component"]
    got = fn(component=tf.constant([0, 0, 0]), eps=tf.constant(z))["images"].numpy()
    np.testing.assert_allclose(got, model.generator(z, training=False).numpy(), atol=TOL)


def test_export_mode_from_the_command_line(tmp_path):
    """main.py --mode=export on a checkpointed workdir (as the README says)."""
    config = tiny_config(workdir=str(tmp_path / "run"))
    model = trained_model()
    wd.save_config(config)
    wd.Checkpointer(model, config.workdir).save(1)
    out = tmp_path / "saved"
    result = subprocess.run(
        [sys.executable, "main.py", "--mode=export", f"--workdir={config.workdir}",
         f"--export_dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["gmmgan_generator", "gmmgan_pcm", "models.config"]
    loaded = tf.saved_model.load(str(out / "gmmgan_pcm" / "1")).signatures["serving_default"]
    images = np.full((2, *IMAGE_SHAPE), -1, np.float32)
    got = loaded(images=tf.constant(images))
    np.testing.assert_allclose(got["responsibilities"].numpy(), model.responsibilities(images),
                               atol=TOL)
    assert got["novelty"].shape == (2,) and "is_novel" in got  # calibrated on the validation set
    assert "is_novel flags 5% of the 400 validation images (never trained on)" in result.stdout


def test_export_mode_refuses_a_run_without_a_validation_split(tmp_path):
    """A run trained with --validation_fraction=0 (or before it existed) has no unseen images
    to calibrate the novelty threshold on: one line naming the fix, and nothing written."""
    config = tiny_config(workdir=str(tmp_path / "run"), validation_fraction=0.0)
    wd.save_config(config)
    wd.Checkpointer(trained_model(), config.workdir).save(1)
    out = tmp_path / "saved"
    result = subprocess.run(
        [sys.executable, "main.py", "--mode=export", f"--workdir={config.workdir}",
         f"--export_dir={out}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode != 0
    assert "this run has no validation split" in result.stderr
    assert "retrain with --validation_fraction=0.1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not {"gmmgan_generator", "gmmgan_pcm", "models.config"} & set(os.listdir(out))


def test_each_version_records_its_run_in_the_export_and_in_models_config(tmp_path):
    model = trained_model()
    origin = provenance.record("runs/a", tiny_config(), IMAGE_SHAPE)
    export.export_model(model, str(tmp_path), origin=origin)
    export.export_model(model, str(tmp_path), origin={**origin, "workdir": "/w/b"})
    for name in ("gmmgan_generator", "gmmgan_pcm"):
        assert provenance.read(str(tmp_path / name / "1")) == origin
        assert provenance.read(str(tmp_path / name / "2"))["workdir"] == "/w/b"
    assert origin["workdir"] == os.path.abspath("runs/a") and origin["dataset"] == "mnist_5k"
    assert origin["image_shape"] == [28, 28, 1] and origin["code"] and origin["exported"]
    text = open(tmp_path / "models.config").read()
    line = (f"# version 1: {origin['workdir']} (dataset mnist_5k, 28x28x1, --model=gmmgan, K=3), "
            f"code {origin['code']}, exported {origin['exported']}")
    assert text.count(line) == 2 and text.count("# version 2: /w/b (dataset mnist_5k") == 2


def _export_dir_serving(tmp_path, dataset):
    """An --export_dir whose version 1 came from a run of `dataset` at 28 pixels."""
    version = tmp_path / "saved" / "gmmgan_pcm" / "1"
    version.mkdir(parents=True)
    provenance.write(str(version), {"workdir": "/runs/mnist", "dataset": dataset,
                                    "image_shape": [28, 28, 1]})
    return tmp_path / "saved"


def test_exporting_a_run_of_another_data_set_is_refused_at_once(tmp_path):
    run = tmp_path / "fashion"
    run.mkdir()
    fashion = Config(dataset="fashion_mnist", workdir=str(run)).resolved()
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(fashion)))
    saved = _export_dir_serving(tmp_path, "mnist_5k")
    result = subprocess.run(  # refused before TensorFlow loads, let alone the model
        [sys.executable, "main.py", "--mode=export", f"--workdir={run}", f"--export_dir={saved}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=without_tensorflow())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: --export_dir: {str(saved)!r} serves version 1 of /runs/mnist (dataset mnist_5k, "
        f"28 pixels); {str(run)!r} is dataset fashion_mnist, 28 pixels, and a running server "
        "would switch to it: use another --export_dir, or add --export_replace_model if that is "
        "meant"]
    assert sorted(os.listdir(saved / "gmmgan_pcm")) == ["1"]
    config = dataclasses.replace(fashion, mode="export", export_dir=str(saved))
    provenance.check_export(dataclasses.replace(config, export_replace_model=True))
    with pytest.raises(ConfigError, match="--export_dir: .* serves version 1"):
        provenance.check_export(config)
    _export_dir_serving(tmp_path / "same", "fashion_mnist")
    provenance.check_export(dataclasses.replace(config, export_dir=str(tmp_path / "same" /
                                                                        "saved")))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not on PATH (install it from the TF "
                           "Serving apt repository or use the tensorflow/serving image)")
def test_model_server_answers_grpc_and_rest(exported):
    model, export_dir, _ = exported
    grpc_port, rest_port = _free_port(), _free_port()
    server = subprocess.Popen(
        ["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
         f"--model_config_file={os.path.join(export_dir, 'models.config')}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, _, pixels = inputs(model, n=2)
        want = expected(model, *inputs(model, n=2))[("gmmgan_pcm", "serving_uint8")]
        deadline = time.time() + 60
        while True:
            try:
                got = serving_client.predict_rest(f"http://127.0.0.1:{rest_port}", pixels)
                break
            except serving_client.ClientError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        check_outputs(got, want)
        check_outputs(serving_client.predict_grpc(f"127.0.0.1:{grpc_port}", pixels), want)
        with pytest.raises(serving_client.ClientError, match="28x28 pixels"):
            serving_client.predict_grpc(f"127.0.0.1:{grpc_port}",
                                        np.zeros((1, 32, 32, 1), np.uint8))
    finally:
        server.terminate()
        server.wait(timeout=30)
