"""The real-data warm start of the PCM (`--pcm_init=embedding`; not in the slides, docs/DESIGN.md).

Left to itself, the PCM <-> component loop of Algorithm 1 behaves like EM in pixel space and
settles near k-means on pixels. A clustering from outside the loop tells it which real images
belong together. This is N2D's recipe (McConville et al. 2020):

    autoencoder   dense pixels -> 500 -> 500 -> 2000 -> 10 codes -> ... -> pixels, MSE, Adam;
                  with --warm_start_augment each batch is randomly shifted, rotated and zoomed
                  first and the autoencoder reconstructs that view (DEC-DA, Guo et al. 2018)
    UMAP          of the codes: --warm_start_neighbors neighbours, --warm_start_dims dims,
                  min_dist 0 (tight clumps, good for clustering rather than for pictures)
    GMM           full-covariance GaussianMixture with K components on the UMAP embedding
    neighbours    with --warm_start_neighbour_epochs > 0: SCAN's clustering step (Van Gansbeke
                  et al. 2020), a PCM-shaped network trained so that each image and its nearest
                  neighbours in pixel space share a confident cluster, with every cluster kept in
                  use (losses.neighbour_consistency_loss); its clusters replace the GMM's.
                  Off by default: on Fashion-MNIST it keeps apart classes that the mixture on
                  the embedding cuts or merges (held-out ACC 0.68 against 0.63); on mnist_5k
                  pixel neighbours are worse than the embedding; and its entropy term favours
                  clusters of equal size (docs/RESULTS.md §0).

It yields soft responsibilities for every training image and the mixture weights. train.py
pre-trains the PCM on the responsibilities (so PCM index k = GMM cluster k, and through the
responsibility-weighted heads, D's head k and component k follow) and starts the prior's
alpha_k from the weights; gan.py keeps a real-data term on them during training.

For large sets the autoencoder and UMAP are fitted on a --warm_start_fit_images subsample and
the other images are embedded with UMAP's transform. The result is cached in
<workdir>/warm_start/ (written to a temporary directory, then renamed into place), so a resumed
run reuses it; a damaged or stale cache is rebuilt, on a resumed run with its clusters renumbered
to agree with the restored PCM, which was trained on the old cache's numbering.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.metadata
import json
import os
import pickle
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment
from scipy.special import softmax

from gmmgan_tf import caches, losses
from gmmgan_tf.config import Config
from gmmgan_tf.errors import ConfigError, DataError, writing
from gmmgan_tf.networks import Encoder, Head, augmenter, kernel_initializer

CACHE_DIR = "warm_start"
CLUSTERER_WEIGHTS = "clusterer.weights.h5"
AUTOENCODER_UNITS = (500, 500, 2000)
CODE_DIM = 10
AUTOENCODER_BATCH = 256
AUTOENCODER_LEARNING_RATE = 1e-3
UMAP_MIN_DIST = 0.0  # tight clumps, good for clustering rather than for pictures
MIXTURE_INITS = 3
PRETRAIN_BATCH = 64
NEIGHBOURS = 20  # SCAN's neighbours an image
NEIGHBOUR_ENTROPY_WEIGHT = 5.0  # SCAN's weight of the entropy of the mean prediction
NEIGHBOUR_BATCH = 128
NEIGHBOUR_LEARNING_RATE = 1e-3
# How the networks draw their randomness: "local" = from each function's seed alone (a cache
# recorded none was made under keras.utils.set_random_seed(seed), "global": other numbers).
SEEDING = "local"


def _version(package: str) -> str:
    """The installed version of `package`, read without importing it (umap takes seconds)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the warm start's result depends on (a cache with other settings is stale):
    the options, then this module's constants and the libraries' versions, today's values."""
    num_components: int
    autoencoder_steps: int
    fit_images: int
    neighbors: int
    dims: int
    seed: int
    augment: bool = False
    neighbour_epochs: int = 0
    autoencoder_units: tuple[int, ...] = AUTOENCODER_UNITS
    code_dim: int = CODE_DIM
    autoencoder_batch: int = AUTOENCODER_BATCH
    autoencoder_learning_rate: float = AUTOENCODER_LEARNING_RATE
    umap_min_dist: float = UMAP_MIN_DIST
    mixture_inits: int = MIXTURE_INITS
    neighbour_count: int = NEIGHBOURS
    neighbour_entropy_weight: float = NEIGHBOUR_ENTROPY_WEIGHT
    neighbour_batch: int = NEIGHBOUR_BATCH
    neighbour_learning_rate: float = NEIGHBOUR_LEARNING_RATE
    seeding: str = SEEDING
    umap_learn_version: str = _version("umap-learn")
    scikit_learn_version: str = _version("scikit-learn")
    tensorflow_version: str = _version("tensorflow")
    keras_version: str = _version("keras")
    numpy_version: str = _version("numpy")

    @classmethod
    def from_config(cls, config: Config) -> "Settings":
        return cls(config.num_components, config.warm_start_autoencoder_steps,
                   config.warm_start_fit_images, config.warm_start_neighbors,
                   config.warm_start_dims, config.seed, config.warm_start_augment,
                   config.warm_start_neighbour_epochs)


@dataclasses.dataclass
class WarmStart:
    """The clustering of the training images and the models that embed new images."""
    responsibilities: np.ndarray  # float32 [N, K]: Pr(k | training image n)
    weights: np.ndarray  # float64 [K]: the clusters' weights
    seconds: dict[str, float]
    encoder: keras.Model | None = None
    reducer: object | None = None  # umap.UMAP
    mixture: object | None = None  # sklearn GaussianMixture
    clusterer: keras.Model | None = None  # the neighbour stage's network, when it ran
    image_shape: tuple[int, ...] | None = None  # the clusterer's input [H, W, C]

    def embed(self, images: np.ndarray) -> np.ndarray:
        """UMAP embedding [N, dims] of images in [-1, 1] (new images: UMAP's transform)."""
        codes = self.encoder.predict(_flatten(images), batch_size=1024, verbose=0)
        return self.reducer.transform(codes)

    def mixture_proba(self, images: np.ndarray) -> np.ndarray:
        """The GaussianMixture's responsibilities [N, K] of any images."""
        return self.mixture.predict_proba(self.embed(images))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """The warm start's responsibilities [N, K] of any images (the neighbour stage's
        clusters when it ran, else the GaussianMixture's)."""
        if self.clusterer is None:
            return self.mixture_proba(images)
        return softmax(self.clusterer.predict(images, batch_size=1024, verbose=0), axis=1)

    def log_density(self, images: np.ndarray) -> np.ndarray:
        """log p(embedding) under the GMM [N]: low for images unlike the training set."""
        return self.mixture.score_samples(self.embed(images))


def check_enough_images(num_images: int, settings: Settings) -> None:
    needed = max(settings.neighbors + 1, 2 * settings.num_components, settings.dims + 2)
    if num_images < needed:
        raise DataError(
            f"--pcm_init=embedding: {num_images} training images are too few for the warm start "
            f"({settings.num_components} components, {settings.neighbors} UMAP neighbours need "
            f"at least {needed}); use --pcm_init=none, or fewer --num_components / "
            "--warm_start_neighbors")


def compute(images: np.ndarray, settings: Settings, log=print) -> WarmStart:
    """Autoencoder -> UMAP -> GaussianMixture on `images` [N, H, W, C] in [-1, 1]."""
    check_enough_images(len(images), settings)
    flat = _flatten(images)
    fit = fit_indices(len(flat), settings.fit_images, settings.seed)
    seconds = {}

    stages = 4 if settings.neighbour_epochs else 3
    start = time.time()
    log(f"Warm start 1/{stages}: autoencoder on {len(fit)} images, "
        f"{settings.autoencoder_steps} steps" + (", augmented" if settings.augment else ""))
    encoder = train_autoencoder(images[fit], settings.autoencoder_steps, settings.seed,
                                settings.augment)
    codes = encoder.predict(flat, batch_size=1024, verbose=0)
    seconds["autoencoder"] = time.time() - start

    start = time.time()
    log(f"Warm start 2/{stages}: UMAP of the codes ({settings.neighbors} neighbours, "
        f"{settings.dims} dims)")
    reducer = make_reducer(settings.neighbors, settings.dims, settings.seed)
    try:
        embedding = np.empty((len(flat), settings.dims), np.float32)
        embedding[fit] = reducer.fit_transform(codes[fit])
        rest = np.setdiff1d(np.arange(len(flat)), fit)
        if len(rest):
            embedding[rest] = reducer.transform(codes[rest])
    except (ValueError, RuntimeError, MemoryError) as e:
        raise DataError(f"--pcm_init=embedding: UMAP failed on the autoencoder codes "
                        f"({type(e).__name__}: {e}); use --pcm_init=none") from None
    seconds["umap"] = time.time() - start

    start = time.time()
    log(f"Warm start 3/{stages}: GaussianMixture, {settings.num_components} full-covariance "
        "components")
    mixture = fit_mixture(embedding[fit], settings.num_components, settings.seed)
    responsibilities = mixture.predict_proba(embedding).astype(np.float32)
    weights = mixture.weights_
    seconds["mixture"] = time.time() - start

    clusterer = None
    if settings.neighbour_epochs:
        start = time.time()
        log(f"Warm start 4/4: neighbour clustering (SCAN) of {len(fit)} images, "
            f"{settings.neighbour_epochs} epochs")
        clusterer = neighbour_clustering(images[fit], settings.num_components,
                                         settings.neighbour_epochs, settings.seed)
        responsibilities = softmax(clusterer.predict(images, batch_size=1024, verbose=0),
                                   axis=1)
        weights = responsibilities.mean(axis=0, dtype=np.float64)
        seconds["neighbours"] = time.time() - start
    seconds = {name: round(value, 1) for name, value in seconds.items()}
    return WarmStart(responsibilities.astype(np.float32), weights, seconds, encoder, reducer,
                     mixture, clusterer, tuple(images.shape[1:]))


def fit_indices(num_images: int, fit_images: int, seed: int) -> np.ndarray:
    """The sorted indices of the images the autoencoder, UMAP and stage 4 are fitted on: all of
    them, or a random --warm_start_fit_images subset."""
    if num_images <= fit_images:
        return np.arange(num_images)
    return np.sort(np.random.default_rng(seed).choice(num_images, fit_images, replace=False))


def make_reducer(neighbors: int, dims: int, seed: int, metric: str = "euclidean"):
    """The warm start's UMAP: min_dist UMAP_MIN_DIST, one thread."""
    import umap  # imported here: numba's start-up is seconds, and only the warm start needs it

    return umap.UMAP(n_neighbors=neighbors, n_components=dims, min_dist=UMAP_MIN_DIST,
                     metric=metric, random_state=seed, n_jobs=1)


def fit_mixture(embedding: np.ndarray, num_components: int, seed: int):
    """The warm start's full-covariance GaussianMixture (MIXTURE_INITS initialisations) on
    `embedding`."""
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(num_components, covariance_type="full", n_init=MIXTURE_INITS,
                           random_state=seed).fit(embedding)


def neighbour_clustering(images: np.ndarray, num_components: int, epochs: int, seed: int
                         ) -> keras.Model:
    """SCAN's clustering step on `images` [N, H, W, C]: a PCM-shaped network (width 1) whose
    prediction on a random view of each image agrees with its prediction on a random view of
    one of the image's NEIGHBOURS nearest neighbours in pixel space (Adam, batch 128)."""
    from sklearn.neighbors import NearestNeighbors

    flat = _flatten(images)
    count = min(NEIGHBOURS, len(images) - 1)
    neighbours = NearestNeighbors(n_neighbors=count + 1).fit(flat).kneighbors(
        flat, return_distance=False)[:, 1:]  # column 0 is the image itself
    network = _pcm_shaped(images.shape[1:], num_components, seed=seed)
    views = augmenter(seed)
    optimizer = keras.optimizers.Adam(NEIGHBOUR_LEARNING_RATE)
    optimizer.build(network.trainable_variables)

    @tf.function
    def step(anchors, their_neighbours):
        with tf.GradientTape() as tape:
            anchor_probs = tf.nn.softmax(network(views(anchors, training=True), training=True))
            neighbour_probs = tf.nn.softmax(
                network(views(their_neighbours, training=True), training=True))
            loss = losses.neighbour_consistency_loss(anchor_probs, neighbour_probs,
                                                     NEIGHBOUR_ENTROPY_WEIGHT)
        optimizer.apply_gradients(zip(tape.gradient(loss, network.trainable_variables),
                                      network.trainable_variables))

    rng = np.random.default_rng(seed)
    images = np.asarray(images, np.float32)
    batch = min(NEIGHBOUR_BATCH, len(images))
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images) - batch + 1, batch):
            anchors = order[start:start + batch]
            chosen = neighbours[anchors, rng.integers(0, count, len(anchors))]
            step(tf.constant(images[anchors]), tf.constant(images[chosen]))
    return network


def train_autoencoder(images: np.ndarray, steps: int, seed: int, augment: bool) -> keras.Model:
    """The encoder of a dense autoencoder trained with MSE on `images` [N, H, W, C] (or on
    random views of them when `augment`, as DEC-DA does); codes are linear, 10-d."""
    kernels = kernel_initializer(keras.random.SeedGenerator(seed))
    size = int(np.prod(images.shape[1:]))
    inputs = keras.Input((size,))
    hidden = inputs
    for units in AUTOENCODER_UNITS:
        hidden = keras.layers.Dense(units, activation="relu", kernel_initializer=kernels)(hidden)
    code = keras.layers.Dense(CODE_DIM, name="code", kernel_initializer=kernels)(hidden)
    hidden = code
    for units in reversed(AUTOENCODER_UNITS):
        hidden = keras.layers.Dense(units, activation="relu", kernel_initializer=kernels)(hidden)
    outputs = keras.layers.Dense(size, kernel_initializer=kernels)(hidden)
    autoencoder = keras.Model(inputs, outputs)
    autoencoder.compile(keras.optimizers.Adam(AUTOENCODER_LEARNING_RATE), "mse")
    pairs = autoencoder_batches(images, min(AUTOENCODER_BATCH, len(images)), steps, seed,
                                augment)
    # The pairs are in their order already; fit's own shuffle only warns for a tf.data input.
    autoencoder.fit(pairs, epochs=1, verbose=0, shuffle=False)
    return keras.Model(inputs, code)


def autoencoder_batches(images: np.ndarray, batch: int, steps: int, seed: int, augment: bool
                        ) -> tf.data.Dataset:
    """`steps` (input, target) batches of flattened images, each pass over `images` in a new
    order drawn from `seed` alone (tf.data's shuffle would mix in TensorFlow's global seed);
    with `augment` both are the same random view (the autoencoder reconstructs what it sees)."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch // len(images))
    order = np.concatenate([rng.permutation(len(images)) for _ in range(passes)])
    batches = (tf.data.Dataset.from_tensor_slices(order[:steps * batch].reshape(steps, batch))
               .map(functools.partial(tf.gather, np.asarray(images, np.float32))))
    if augment:
        views = augmenter(seed)
        batches = batches.map(lambda x: views(x, training=True))
    size = int(np.prod(images.shape[1:]))
    return batches.map(lambda x: (tf.reshape(x, (-1, size)),) * 2).prefetch(tf.data.AUTOTUNE)


def pretrain_pcm(pcm, images: np.ndarray, targets: np.ndarray, *, width_multiplier: float,
                 epochs: int, learning_rate: float, seed: int) -> float:
    """Trains a twin of the PCM (same architecture and starting weights) on soft targets
    (cross-entropy, Adam) outside any distribution strategy, then copies its weights into `pcm`
    (which may be mirrored); returns the last epoch's loss."""
    twin = _pcm_shaped(images.shape[1:], targets.shape[1], width_multiplier, seed=seed)
    twin.set_weights(pcm.get_weights())
    twin.compile(keras.optimizers.Adam(learning_rate),
                 keras.losses.CategoricalCrossentropy(from_logits=True))
    # Each epoch in an order drawn from `seed` alone (fit's shuffle uses the global generators).
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        history = twin.fit(images[order], targets[order], batch_size=PRETRAIN_BATCH, epochs=1,
                           shuffle=False, verbose=0)
    pcm.set_weights(twin.get_weights())
    return float(history.history["loss"][-1])


def _flatten(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(len(images), -1)


def _pcm_shaped(image_shape, units: int, width_multiplier: float = 1.0, seed: int = 0) -> Head:
    """A built network of the PCM's architecture: images [H, W, C] -> `units` logits, its
    initial weights drawn from `seed` alone."""
    kernels = keras.random.SeedGenerator(seed)
    network = Head(Encoder(tuple(image_shape), width_multiplier, seed=kernels), units,
                   seed=kernels)
    network(np.zeros([1, *image_shape], np.float32))
    return network


def _saved_settings(saved) -> Settings | None:
    """The Settings a cache was made with; a setting added since takes its default (an option's
    default, today's constant or library version), so that a cache made before it was recorded
    still counts when that is what it had; but a cache older than SEEDING used the global one."""
    try:  # JSON made the tuples lists
        return Settings(**{"seeding": "global",
                           **{name: tuple(value) if isinstance(value, list) else value
                              for name, value in saved.items()}})
    except (AttributeError, TypeError):  # not a dict, or a setting this version does not know
        return None


# --- the cache in <workdir>/warm_start/ ------------------------------------------------------
def save(result: WarmStart, directory: str, settings: Settings, images_hash: str) -> None:
    """Writes the cache into a temporary sibling directory and renames it into place; an old
    cache is renamed aside first and deleted last, so that a failure leaves one readable cache
    (a kill between the two renames leaves none: the next run rebuilds it)."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-warm_start-")
    old = tmp + ".old"
    try:
        np.save(os.path.join(tmp, "responsibilities.npy"), result.responsibilities)
        np.save(os.path.join(tmp, "weights.npy"), result.weights)
        result.encoder.save(os.path.join(tmp, "encoder.keras"))
        with open(os.path.join(tmp, "embedding.pkl"), "wb") as f:
            pickle.dump({"reducer": result.reducer, "mixture": result.mixture}, f)
        meta = {"settings": dataclasses.asdict(settings), "images": images_hash,
                "seconds": result.seconds}
        if result.clusterer is not None:
            result.clusterer.save_weights(os.path.join(tmp, CLUSTERER_WEIGHTS))
            meta["image_shape"] = list(result.image_shape)
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if os.path.exists(directory):
            os.rename(directory, old)  # a stale or damaged cache
        os.rename(tmp, directory)
    except BaseException:
        if os.path.exists(old):
            os.rename(old, directory)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def load(directory: str, settings: Settings | None = None, images_hash: str | None = None,
         with_models: bool = False) -> WarmStart:
    """Reads a cache; raises ValueError (stale) or OSError/EOFError/... (damaged)."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    saved = _saved_settings(meta.get("settings"))
    if settings is not None and saved != settings:
        changed = [field.name for field in dataclasses.fields(Settings) if saved is not None
                   and getattr(saved, field.name) != getattr(settings, field.name)]
        raise ValueError("it was made with other warm-start settings"
                         + (f" ({', '.join(changed)})" if changed else ""))
    if images_hash is not None and meta.get("images") != images_hash:
        raise ValueError("it was made on other training images")
    responsibilities = np.load(os.path.join(directory, "responsibilities.npy"))
    weights = np.load(os.path.join(directory, "weights.npy"))
    if (responsibilities.ndim != 2 or weights.shape != (responsibilities.shape[1],)
            or not np.all(np.isfinite(responsibilities))):
        raise ValueError("its arrays have the wrong shapes or non-finite values")
    result = WarmStart(responsibilities, weights, meta.get("seconds", {}))
    if with_models:
        result.encoder = keras.models.load_model(os.path.join(directory, "encoder.keras"))
        with open(os.path.join(directory, "embedding.pkl"), "rb") as f:
            models = pickle.load(f)
        result.reducer, result.mixture = models["reducer"], models["mixture"]
        if "image_shape" in meta:
            result.image_shape = tuple(meta["image_shape"])
            result.clusterer = _pcm_shaped(result.image_shape, weights.shape[0])
            result.clusterer.load_weights(os.path.join(directory, CLUSTERER_WEIGHTS))
    return result


def load_or_compute(config: Config, images: np.ndarray, log=print, reference=None) -> WarmStart:
    """The cached warm start of this workdir, or a new one (then cached). `reference`, on a
    resumed run: a function giving the restored PCM's responsibilities [N, K] of `images`; the
    PCM was trained on the old cache's numbering of the clusters, which a new clustering need
    not repeat, so a new one is renumbered to agree with the PCM (numbered_like)."""
    directory = os.path.join(config.workdir, CACHE_DIR)
    settings = Settings.from_config(config)
    images_hash = caches.fingerprint(images)  # a cache made on other data is stale
    if os.path.exists(directory):
        try:
            result = load(directory, settings, images_hash)  # the hash covers the image count
            log(f"Warm start: reusing {directory}")
            return result
        except PermissionError as e:  # not damage: rebuilding would fail the same way
            raise ConfigError(
                f"--workdir: the warm-start cache {e.filename or directory} cannot be read "
                f"({e.strerror or e}); fix its permissions, or move {directory} aside to rebuild "
                "it") from None
        except (OSError, ValueError, EOFError, json.JSONDecodeError) as e:
            reason = str(e) or type(e).__name__
        log(f"Warm start: rebuilding {directory} ({reason})")
    start = time.time()
    result = compute(images, settings, log)
    if reference is not None:
        result = numbered_like(result, reference(), log)
    with writing(directory):
        save(result, directory, settings, images_hash)
    log(f"Warm start: {time.time() - start:.0f} s ({result.seconds}), cached in {directory}")
    return result


def numbered_like(result: WarmStart, reference: np.ndarray, log=print) -> WarmStart:
    """`result` with its clusters renumbered to agree best with `reference` [N, K] (the restored
    PCM's responsibilities of the same images): the permutation that maximises the summed
    agreement sum_n reference_nk result_nj of the matched pairs (k, j) (Hungarian matching)."""
    agreement = reference.T.astype(np.float64) @ result.responsibilities  # [PCM k, result j]
    _, order = linear_sum_assignment(agreement, maximize=True)
    share = agreement[np.arange(len(order)), order].sum() / len(reference)
    log(f"Warm start: renumbered the new clusters to agree with the checkpoint's PCM (its "
        f"cluster k is the new clustering's {order.tolist()}[k]; they agree on {share:.0%} of "
        "the images)")
    return permuted(result, order)


def permuted(result: WarmStart, order: np.ndarray) -> WarmStart:
    """A copy of `result` whose cluster k is its cluster order[k], in the responsibilities, the
    weights and the models that predict clusters (the encoder and UMAP know none)."""
    mixture = clusterer = None
    if result.mixture is not None:
        mixture = copy.deepcopy(result.mixture)
        for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
            setattr(mixture, name, getattr(mixture, name)[order])
    if result.clusterer is not None:
        clusterer = _pcm_shaped(result.image_shape, len(order))
        clusterer.set_weights(result.clusterer.get_weights())
        kernel, bias = clusterer.dense.get_weights()
        clusterer.dense.set_weights([kernel[:, order], bias[order]])
    return dataclasses.replace(result, responsibilities=result.responsibilities[:, order],
                               weights=result.weights[order], mixture=mixture,
                               clusterer=clusterer)
