"""`--mode=export`: versioned SavedModels for TF Serving, written atomically.

    <export_dir>/gmmgan_generator/<v>/  serving_default:  z [N, d] float32        -> images
                                        sample_component: component [N] int32,
                                                          eps [N, d] float32      -> images
    <export_dir>/gmmgan_pcm/<v>/        serving_default:  images [N, H, W, C] float32 in [-1, 1]
                                        serving_uint8:    images [N, H, W, C] uint8 in [0, 255]
                                                          -> responsibilities [N, K] (rows sum
                                                             to 1), component [N] int64,
                                                             novelty [N] float32 (higher = less
                                                             like the training images),
                                                             novelty_threshold [N] float32,
                                                             is_novel [N] bool
                                        assets.extra/novelty.json: how the novelty outputs
                                                          were fitted and calibrated
    <export_dir>/models.config          model_config_list for tensorflow_model_server, a
                                        comment a version naming the run it came from
    <v>/assets.extra/provenance.json    that run: workdir, data set, image shape, code, date

Images out of the generator are float32 [N, H, W, C] in [-1, 1]. Every input is declared with an
unknown shape and checked inside the graph (rank, size, channels; float values by the rule of
image_range.py, which also refuses [0, 1] images), because TF Serving feeds tensors to the graph
without checking them against the declared shape: a wrong-sized image must fail with a message
naming the expected shape, not deep inside a convolution. Two PCM signatures, because a
signature has one dtype: uint8 for decoded PNGs, float32 to chain the generator's output.

Each model directory gets version max(existing) + 1, the same number for both models of one
export. A version is written to a hidden temporary directory (TF Serving only loads numeric ones)
and renamed into place, so a failed export leaves earlier versions untouched and no partial one.
Baselines without a PCM export only the generator. A run of another data set or image size
than the newest version is refused unless --export_replace_model (provenance.py), since a
running server would switch to it.

`novelty` is the scorer NOVELTY_SCORER of novelty.py (chosen by docs/NOVELTY.md's tables), its
fitted parameters constants of the graph (knn's projection and bank: variables, one copy for
both signatures; 12 MB for a mnist_5k PCM); the threshold is calibrated on the run's validation
images, which it never trained on, so that novelty.FLAG_SHARE (5 %) of images like them have
is_novel = novelty > novelty_threshold (novelty.calibrate; a run without a validation split is
refused). It is repeated per image so that every output has the batch dimension (TF Serving's
row format needs it). The three outputs are additive: clients of older exports, which lack
them, keep working. TF Serving ignores assets.extra/ but for its warm-up file.
"""
from __future__ import annotations

import dataclasses
import os
import shutil

import keras
import tensorflow as tf

from gmmgan_tf import image_range, novelty, provenance, run_options, workdir as wd
from gmmgan_tf.config import Config
from gmmgan_tf.errors import writing
from gmmgan_tf.images import atomic_write_bytes

GENERATOR = "gmmgan_generator"
PCM = "gmmgan_pcm"
NOVELTY_SCORER = novelty.SERVED_SCORER
METADATA = os.path.join("assets.extra", "novelty.json")


def _validated(tensor: tf.Tensor, checks) -> tf.Tensor:
    """`tensor` after every (condition, message) check has passed at run time. One Assert
    carries the message of the first failing check (separate asserts run in any order).

    Callers give the result its static shape with tf.reshape, not tf.ensure_shape: Grappler
    propagates an EnsureShape back to the input and folds the rank check away.
    """
    passed = tf.stack([condition for condition, _ in checks])
    # The number of leading passes is the index of the first failure (argmin breaks ties
    # arbitrarily); clipped for the all-pass case, where the message is not used.
    first_failure = tf.reduce_sum(tf.math.cumprod(tf.cast(passed, tf.int32)))
    messages = tf.constant([message for _, message in checks])
    message = tf.gather(messages, tf.minimum(first_failure, len(checks) - 1))
    with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(passed), [message])]):
        return tf.identity(tensor)


def _check_latents(z: tf.Tensor, latent_dim: int, name: str) -> tf.Tensor:
    z = _validated(z, [
        (tf.equal(tf.rank(z), 2), f"{name} must have rank 2: [N, {latent_dim}]"),
        (tf.reduce_all(tf.equal(tf.shape(z)[-1:], latent_dim)),
         f"{name} must be [N, {latent_dim}]: the latent dimension d of this model is "
         f"{latent_dim}"),
    ])
    return tf.reshape(z, [-1, latent_dim])


def check_images(images: tf.Tensor, image_shape: tuple[int, int, int]) -> tf.Tensor:
    """images [N, H, W, C] as float32 in [-1, 1]; uint8 pixels are mapped by x / 127.5 - 1,
    floats must pass image_range's rule (the one the client and --mode=assign apply)."""
    h, w, c = image_shape
    # The shape padded with -1 so that indexing it cannot fail before the rank check speaks.
    shape = tf.concat([tf.shape(images), [-1, -1, -1, -1]], axis=0)
    checks = [
        (tf.equal(tf.rank(images), 4), f"images must have rank 4: [N, {h}, {w}, {c}] (NHWC); "
                                       "send a batch, even of one image"),
        (tf.equal(shape[3], c), f"images must have {c} channel(s) (NHWC, [N, {h}, {w}, {c}])"),
        (tf.logical_and(tf.equal(shape[1], h), tf.equal(shape[2], w)),
         f"images must be {h}x{w} pixels, the training size ([N, {h}, {w}, {c}])"),
    ]
    if images.dtype == tf.uint8:
        images = _validated(images, checks)
        images = tf.cast(images, tf.float32) / 127.5 - 1.0
    else:
        # 0..255 or [0, 1] floats would silently give wrong answers.
        checks += image_range.float_checks(tf.reduce_all(tf.math.is_finite(images)),
                                           tf.reduce_min(images), tf.reduce_max(images))
        images = _validated(images, checks)
    return tf.reshape(images, [-1, h, w, c])


def generator_archive(model) -> keras.export.ExportArchive:
    d, k = model.latent_dim, model.num_components
    generator = model.sampling_generator  # G's moving average with --ema_decay
    archive = keras.export.ExportArchive()
    archive.track(generator)

    def from_latents(z):
        return {"images": generator(_check_latents(z, d, "z"), training=False)}

    def sample_component(component, eps):
        eps = _check_latents(eps, d, "eps")
        component = _validated(component, [
            (tf.equal(tf.rank(component), 1), "component must have rank 1: [N] int32"),
            (tf.reduce_all(tf.equal(tf.shape(component)[:1], tf.shape(eps)[:1])),
             "component [N] and eps [N, d] must have the same N"),
            (tf.reduce_all((component >= 0) & (component < k)),
             f"component ids must be in [0, {k}): this model has {k} components"),
        ])
        component = tf.reshape(component, [-1])
        return {"images": generator(model.sampling_latents(component, eps), training=False)}

    archive.add_endpoint("serving_default", from_latents,
                         [tf.TensorSpec(None, tf.float32, name="z")])
    archive.add_endpoint("sample_component", sample_component,
                         [tf.TensorSpec(None, tf.int32, name="component"),
                          tf.TensorSpec(None, tf.float32, name="eps")])
    return archive


def pcm_archive(model, calibration: novelty.Calibration | None = None
                ) -> keras.export.ExportArchive:
    """The PCM's signatures; with a `calibration`, also the novelty outputs of its scorer (of
    the PCM's outputs or of D's logits)."""
    reads = novelty.SCORERS[calibration.scorer].reads if calibration else ()
    archive = keras.export.ExportArchive()
    archive.track(model.pcm)
    if novelty.DISCRIMINATOR_LOGITS in reads:
        archive.track(model.discriminator)
    fitted = calibration.fitted if calibration else None
    if novelty.PCM_FLAT_FEATURES in reads:
        # knn's projection and bank as variables, not graph constants: megabytes that both
        # signatures would otherwise each carry a copy of.
        store = tf.Module()
        store.projection = tf.Variable(fitted.projection, trainable=False, name="knn_projection")
        store.bank = tf.Variable(fitted.bank, trainable=False, name="knn_bank")
        archive.track(store)
        fitted = dataclasses.replace(fitted, projection=store.projection, bank=store.bank)

    def responsibilities(images):
        images = check_images(images, model.image_shape)
        # One pass of the encoder: the logits and the novelty features all start from it.
        flat = model.pcm.encoder(images, training=False)
        probs = tf.nn.softmax(model.pcm.dense(flat))
        out = {"responsibilities": probs, "component": tf.argmax(probs, axis=-1)}
        if calibration is None:
            return out
        outputs = {novelty.RESPONSIBILITIES: probs}
        if novelty.PCM_FEATURES in reads:
            outputs[novelty.PCM_FEATURES] = model.pcm.encoder.channel_moments(flat)
        if novelty.PCM_FLAT_FEATURES in reads:
            outputs[novelty.PCM_FLAT_FEATURES] = flat
        if novelty.DISCRIMINATOR_LOGITS in reads:
            outputs[novelty.DISCRIMINATOR_LOGITS] = model.discriminator(images, training=False)
        score = novelty.SCORERS[calibration.scorer].formula(outputs, fitted)
        limit = tf.fill(tf.shape(score), tf.constant(calibration.threshold, tf.float32))
        out.update(novelty=score, novelty_threshold=limit, is_novel=score > limit)
        return out

    archive.add_endpoint("serving_default", responsibilities,
                         [tf.TensorSpec(None, tf.float32, name="images")])
    archive.add_endpoint("serving_uint8", responsibilities,
                         [tf.TensorSpec(None, tf.uint8, name="images")])
    return archive


def next_version(*model_dirs: str) -> int:
    """1 + the largest numeric version under any of `model_dirs` (1 when there is none)."""
    return max((v for d in model_dirs for v in provenance.versions(d)), default=0) + 1


def write_versions(archives: dict, export_dir: str, version: int, metadata: dict | None = None,
                   origin: dict | None = None) -> dict[str, str]:
    """Writes each archive to <export_dir>/<name>/<version>, with metadata[name] (if any) as
    the JSON file METADATA and `origin` (provenance.record) in it: all to hidden temporary
    directories first, then renamed into place, so a failure leaves no new version behind."""
    temporary, written = {}, {}
    try:
        for name, archive in archives.items():
            final = os.path.join(export_dir, name, str(version))
            if os.path.exists(final):
                raise FileExistsError(f"{final} exists; versions are never overwritten")
            os.makedirs(os.path.dirname(final), exist_ok=True)
            temporary[name] = os.path.join(export_dir, name, f".tmp-{version}-{os.getpid()}")
            with writing(final):
                archive.write_out(temporary[name], verbose=False)
                if name in (metadata or {}):
                    wd.write_json(os.path.join(temporary[name], METADATA), metadata[name])
                if origin is not None:
                    provenance.write(temporary[name], origin)
            written[name] = final
        for name, final in written.items():
            os.rename(temporary[name], final)
    finally:
        for tmp in temporary.values():
            shutil.rmtree(tmp, ignore_errors=True)
    return written


def models_config(export_dir: str, names: list[str]) -> str:
    """model_config_list text proto for `tensorflow_model_server --model_config_file`, with a
    comment a version saying which run it came from."""
    entries = []
    for name in names:
        base = os.path.abspath(os.path.join(export_dir, name))
        comments = "".join(
            f"    {provenance.comment(v, provenance.read(os.path.join(base, str(v))))}\n"
            for v in provenance.versions(base))
        entries.append(f'  config {{\n    name: "{name}"\n    base_path: "{base}"\n'
                       f'    model_platform: "tensorflow"\n{comments}  }}\n')
    return f"model_config_list {{\n{''.join(entries)}}}\n"


def export_model(model, export_dir: str, calibration: novelty.Calibration | None = None,
                 origin: dict | None = None) -> dict[str, str]:
    """Exports the generator (and the PCM if any) of `model`; returns {name: version dir}.
    With a `calibration` (novelty.calibrate), the PCM also serves the novelty outputs; `origin`
    (provenance.record) is written into every version."""
    archives = {GENERATOR: generator_archive(model)}
    if model.pcm is not None:
        archives[PCM] = pcm_archive(model, calibration)
    metadata = {PCM: calibration.metadata()} if calibration and PCM in archives else None
    version = next_version(*(os.path.join(export_dir, name) for name in (GENERATOR, PCM)))
    written = write_versions(archives, export_dir, version, metadata, origin)
    served = sorted(name for name in (GENERATOR, PCM)
                    if os.path.isdir(os.path.join(export_dir, name)))
    atomic_write_bytes(os.path.join(export_dir, "models.config"),
                       models_config(export_dir, served).encode())
    return written


def export(config: Config) -> None:
    """--mode=export: the latest checkpoint of --workdir to --export_dir."""
    trained, bundle, model = wd.load_trained_model(config.workdir,
                                                   **run_options.overrides(config))
    calibration = novelty.calibrate(model, bundle) if model.pcm is not None else None
    written = export_model(model, config.export_dir, calibration,
                           provenance.record(config.workdir, trained, bundle.image_shape))
    if calibration:
        print(f"{PCM}: novelty = {calibration.scorer}, fitted on the "
              f"{calibration.train_images} training images; is_novel flags "
              f"{novelty.FLAG_SHARE:.0%} of the {calibration.calibration_images} validation "
              "images (never trained on)")
    for name, path in written.items():
        print(f"Wrote {path} ({name})")
    print(f"Wrote {os.path.join(config.export_dir, 'models.config')}: serve with "
          f"tensorflow_model_server --port=8500 --rest_api_port=8501 "
          f"--model_config_file={os.path.abspath(os.path.join(config.export_dir, 'models.config'))}")
