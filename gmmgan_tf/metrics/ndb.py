"""NDB/K and JS: the number of statistically different bins (Richardson & Weiss, NeurIPS 2018).

Protocol (as in the authors' reference code, `eitanrich/gans-n-gmms/utils/ndb.py`):
1. Bins: K-means (K bins, at most 100 Lloyd iterations, k-means++ start; one run, where the
   authors' older scikit-learn default made 10) on the flattened training images.
   Optional per-dimension whitening x' = (x - mean_train) / (std_train + 1e-6)
   (off by default; the authors turn it on for RGB sets). For d > 1000 a fixed random subset of
   d // 6 dimensions is used, for both the K-means and the assignment. Bins are sorted by
   decreasing training share; their centres are the means of their members.
2. Assign every query sample to its nearest centre (L2) and take the bin shares q_k.
3. Per bin, the pooled two-proportion z-test of p_k (training share, n_p samples) against q_k
   (n_q samples):  p = (n_p p_k + n_q q_k) / (n_p + n_q),
   z_k = (p_k - q_k) / sqrt(p (1 - p) (1/n_p + 1/n_q)),
   bin k differs when the two-tailed p-value 2 Phi(-|z_k|) < alpha (default 0.05), or when
   |z_k| > z_threshold if one is given.
4. NDB = number of different bins, NDB/K = NDB / K, and JS = the Jensen-Shannon divergence
   (natural log) between the training and the query bin shares.
Sanity: held-out real images score low NDB/K; a set missing whole classes scores high.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.stats import norm
from sklearn.cluster import KMeans, kmeans_plusplus
from threadpoolctl import threadpool_limits

from gmmgan_tf import caches
from gmmgan_tf.metrics.clustering import contingency

WHITENING_EPS = 1e-6
MAX_KMEANS_ITERATIONS = 100
# Above this many dimensions only d // SUBSET_DIVISOR random dimensions are used (speed).
SUBSET_ABOVE_DIMS = 1000
SUBSET_DIVISOR = 6


def resolve_whitening(option: str, channels: int) -> bool:
    """--ndb_whitening: 'on' / 'off', or 'auto' = on for RGB images, off for grey (the
    authors' choice for CelebA versus MNIST)."""
    if option not in ("auto", "on", "off"):
        raise ValueError(f"--ndb_whitening: {option!r} is not one of auto, on, off")
    return option == "on" or (option == "auto" and channels > 1)


def flatten_samples(samples: np.ndarray, name: str = "samples") -> np.ndarray:
    """[N, ...] array -> float64 [N, d], refusing empty, non-finite or one-dimensional input."""
    samples = np.asarray(samples)
    if samples.ndim < 2 or samples.shape[0] == 0:
        raise ValueError(f"{name}: need an array [N, ...] with N >= 1, got shape {samples.shape}")
    flat = samples.reshape(samples.shape[0], -1).astype(np.float64, copy=False)
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{name}: contains NaN or infinite values; check the generator output")
    return flat


def two_proportion_z(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int) -> np.ndarray:
    """Pooled two-proportion z statistic per bin; 0 where the pooled share is 0 or 1."""
    p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    return np.divide(p1 - p2, se, out=np.zeros_like(pooled), where=se > 0)


def different_bins(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int,
                   significance_level: float = 0.05,
                   z_threshold: float | None = None) -> np.ndarray:
    """Boolean mask of bins whose shares differ: two-tailed p-value < significance_level, or
    |z| > z_threshold when a threshold is given."""
    z = two_proportion_z(p1, n1, p2, n2)
    if z_threshold is not None:
        return np.abs(z) > z_threshold
    return 2.0 * norm.cdf(-np.abs(z)) < significance_level


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """sum_k p_k log(p_k / q_k) over p_k > 0 (natural log); needs q_k > 0 wherever p_k > 0."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    support = p > 0
    if np.any(q[support] <= 0):
        raise ValueError("KL(p || q) is infinite: q is 0 where p is not; smooth q first")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence 0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def nearest_centre(x: np.ndarray, centres: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """argmin_k ||x_n - c_k||^2, via ||c||^2 - 2 x.c (||x||^2 does not change the argmin)."""
    c_sq = np.sum(centres * centres, axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), batch_size):
        block = x[start:start + batch_size]
        out[start:start + batch_size] = np.argmin(c_sq - 2.0 * block @ centres.T, axis=1)
    return out


def kmeans_labels(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K-means (k-means++ start, one run, at most 100 Lloyd iterations) cluster of every row.

    Same algorithm as scikit-learn's default `KMeans`, but the k-means++ seeding (k sequential
    small steps) runs on one thread: with the OpenMP threads competing for busy cores it was 7x
    slower multi-threaded (68 s against 9 s for 20,000 MNIST images, K = 100). float32 halves
    the Lloyd time; the caller recomputes the centres in float64.
    """
    x = x.astype(np.float32)
    with threadpool_limits(1):
        init, _ = kmeans_plusplus(x, k, random_state=seed)
    return KMeans(n_clusters=k, init=init, n_init=1, max_iter=MAX_KMEANS_ITERATIONS,
                  random_state=seed).fit(x).labels_


class NDB:
    """Bins fitted once on training images, then `evaluate(samples)` for any sample set.

    Build with `NDB.fit(train_images, num_bins, ...)`, cache with `save(path)` / `NDB.load(path)`
    (or both at once with `NDB.cached(path, ...)`).
    """

    def __init__(self, centres: np.ndarray, proportions: np.ndarray, reference_size: int,
                 dims: np.ndarray, mean: np.ndarray, std: np.ndarray, input_dim: int):
        self.centres = centres  # [K, len(dims)] in the whitened, sub-sampled space
        self.proportions = proportions  # [K] training shares, decreasing
        self.reference_size = int(reference_size)
        self.dims = dims  # indices of the flattened dimensions used
        self.mean = mean  # [d] (zeros without whitening)
        self.std = std  # [d] (ones without whitening)
        self.input_dim = int(input_dim)

    @property
    def num_bins(self) -> int:
        return len(self.proportions)

    @classmethod
    def fit(cls, train_samples: np.ndarray, num_bins: int = 100, whitening: bool = False,
            max_dims: int | None = None, seed: int = 0) -> "NDB":
        """K-means bins on the training samples (see the module docstring)."""
        x = flatten_samples(train_samples, "training samples")
        n, d = x.shape
        if num_bins < 2:
            raise ValueError(f"NDB needs at least 2 bins, got num_bins={num_bins}")
        if n < num_bins:
            raise ValueError(f"NDB with {num_bins} bins needs at least {num_bins} training "
                             f"samples, got {n}; lower --ndb_bins or use more images")
        rng = np.random.default_rng(seed)
        if max_dims is None and d > SUBSET_ABOVE_DIMS:
            max_dims = d // SUBSET_DIVISOR
        dims = (np.arange(d) if max_dims is None or max_dims >= d
                else np.sort(rng.choice(d, size=max_dims, replace=False)))
        if whitening:
            mean, std = x.mean(axis=0), x.std(axis=0) + WHITENING_EPS
        else:
            mean, std = np.zeros(d), np.ones(d)
        z = ((x - mean) / std)[:, dims]
        labels = kmeans_labels(z, num_bins, seed=int(rng.integers(2**31 - 1)))
        counts = np.bincount(labels, minlength=num_bins)
        if np.any(counts == 0):
            raise ValueError(f"K-means left {np.sum(counts == 0)} of {num_bins} bins empty "
                             "(many duplicate images?); lower --ndb_bins")
        centres = np.stack([z[labels == k].mean(axis=0) for k in range(num_bins)])
        order = np.argsort(-counts, kind="stable")
        return cls(centres[order], counts[order] / n, n, dims, mean, std, d)

    def assign(self, samples: np.ndarray) -> np.ndarray:
        """Bin index of every sample (nearest centre)."""
        x = flatten_samples(samples)
        if x.shape[1] != self.input_dim:
            raise ValueError(f"samples have {x.shape[1]} values each but the NDB bins were fitted "
                             f"on {self.input_dim}; evaluate images of the training shape")
        z = ((x - self.mean) / self.std)[:, self.dims]
        return nearest_centre(z, self.centres)

    def bin_proportions(self, samples: np.ndarray) -> np.ndarray:
        """Share of the samples that falls in each bin."""
        labels = self.assign(samples)
        return np.bincount(labels, minlength=self.num_bins) / len(labels)

    def proportions_by_component(self, samples: np.ndarray, components: np.ndarray,
                                 num_components: int) -> np.ndarray:
        """[K, num_components]: share of the samples that falls in bin k and was made by
        component c (summed over c, `bin_proportions`), to see which components fill a bin."""
        components = np.asarray(components)
        if components.shape != (len(np.asarray(samples)),):
            raise ValueError(f"need one component id per sample, got {components.shape}")
        counts = contingency(self.assign(samples), components, self.num_bins, num_components)
        return counts / len(components)

    def evaluate(self, samples: np.ndarray, significance_level: float = 0.05,
                 z_threshold: float | None = None) -> dict:
        """NDB, NDB/K and JS of `samples` against the training bins.

        Returns a dict: ndb (int), ndb_over_k, js, num_bins, num_samples, proportions (the
        query's bin shares), different (bool mask), z (per-bin statistics).
        """
        n = len(np.asarray(samples))
        if n < self.num_bins:
            raise ValueError(f"NDB with {self.num_bins} bins needs at least {self.num_bins} "
                             f"samples to evaluate, got {n}; generate more or lower --ndb_bins")
        q = self.bin_proportions(samples)
        diff = different_bins(self.proportions, self.reference_size, q, n,
                              significance_level, z_threshold)
        ndb = int(np.count_nonzero(diff))
        return {
            "ndb": ndb,
            "ndb_over_k": ndb / self.num_bins,
            "js": js_divergence(self.proportions, q),
            "num_bins": self.num_bins,
            "num_samples": n,
            "proportions": q,
            "different": diff,
            "z": two_proportion_z(self.proportions, self.reference_size, q, n),
        }

    def save(self, path: str, fingerprint: str = "") -> None:
        """Writes the bins as .npz (atomically: temp file then rename)."""
        tmp = path + ".tmp.npz"
        np.savez(tmp, centres=self.centres, proportions=self.proportions,
                 reference_size=self.reference_size, dims=self.dims, mean=self.mean,
                 std=self.std, input_dim=self.input_dim, fingerprint=fingerprint)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "NDB":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no NDB bins file at {path!r}; fit them with NDB.fit first")
        with np.load(path) as f:
            return cls(f["centres"], f["proportions"], int(f["reference_size"]), f["dims"],
                       f["mean"], f["std"], int(f["input_dim"]))

    @classmethod
    def cached(cls, path: str, train_samples: np.ndarray, num_bins: int = 100,
               whitening: bool = False, max_dims: int | None = None, seed: int = 0) -> "NDB":
        """Loads the bins from `path` when it was fitted on the same samples with the same
        options, otherwise fits them and saves them there (one K-means per data set)."""
        key = caches.fingerprint(train_samples, num_bins, whitening, max_dims, seed)
        if os.path.isfile(path):
            try:
                with np.load(path) as f:
                    stale = str(f["fingerprint"]) != key if "fingerprint" in f else True
                if not stale:
                    return cls.load(path)
            except caches.READ_ERRORS as e:
                caches.note_rebuild(path, e, "fitting the bins again")
        ndb = cls.fit(train_samples, num_bins, whitening, max_dims, seed)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        ndb.save(path, fingerprint=key)
        return ndb


def cached_ndb(cache_dir: str, dataset: str, train_samples: np.ndarray, num_bins: int = 100,
               whitening: str = "auto", seed: int = 0) -> NDB:
    """The data set's bins from `<cache_dir>/ndb_<dataset>_<HxWxC>_k<K>_<white|orig>_s<seed>.npz`,
    fitted and saved there on first use (`whitening` as in `resolve_whitening`)."""
    shape = np.shape(train_samples)
    whiten = resolve_whitening(whitening, shape[-1] if len(shape) == 4 else 1)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset)
    name = (f"ndb_{safe}_{'x'.join(map(str, shape[1:]))}_k{num_bins}_"
            f"{'white' if whiten else 'orig'}_s{seed}.npz")
    return NDB.cached(os.path.join(cache_dir, name), train_samples, num_bins, whiten, seed=seed)

