"""Other mixtures on one run's warm-start embedding (docs/RESULTS.md §0, Fashion-MNIST): validation
ACC/NMI of GaussianMixtures with other seeds, n_init and covariances, and of over-clustering
with K' components merged down to K by the entropy criterion (Baudry et al. 2010).

    .venv/bin/python docs/mixture_probe.py runs/fashion10_s0

Reads <workdir>/warm_start/ (the encoder, UMAP and its embedding of the images it was fit on);
the validation images (never the test split: this script chooses) go through the encoder and
UMAP's transform, as the warm start's own evaluation does.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from gmmgan_tf import data, warm_start  # noqa: E402
from gmmgan_tf import workdir as wd  # noqa: E402
from gmmgan_tf.metrics.clustering import clustering_scores  # noqa: E402


def entropy_merge(responsibilities: np.ndarray, k: int) -> list[list[int]]:
    """Greedily merges the pair of components whose union lowers the entropy of the
    responsibilities most, until k groups remain; returns the groups of component indices."""
    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-12, None))).sum()

    r, groups = responsibilities.copy(), [[i] for i in range(responsibilities.shape[1])]
    while r.shape[1] > k:
        pairs = [(i, j) for i in range(r.shape[1]) for j in range(i + 1, r.shape[1])]
        i, j = max(pairs, key=lambda p: entropy(r[:, p[0]]) + entropy(r[:, p[1]])
                   - entropy(r[:, p[0]] + r[:, p[1]]))
        r[:, i] += r[:, j]
        r = np.delete(r, j, axis=1)
        groups[i] += groups.pop(j)
    return groups


def main(run: str) -> None:
    config = wd.load_config(run)
    val_images, val_labels = data.load(config).validation()
    cache = warm_start.load(os.path.join(run, warm_start.CACHE_DIR), with_models=True)
    fit = cache.reducer.embedding_
    val_embedding = cache.reducer.transform(cache.encoder.predict(
        val_images.reshape(len(val_images), -1), batch_size=1024,
        verbose=0))
    k = config.num_components

    def report(label, predicted):
        scores = clustering_scores(val_labels, predicted)
        print(f"{label}: validation ACC {scores['acc']:.3f} NMI {scores['nmi']:.3f}", flush=True)

    for covariance in ("full", "tied", "diag"):
        for n_init in (3, 10):
            for seed in range(3):
                mixture = GaussianMixture(k, covariance_type=covariance, n_init=n_init,
                                          random_state=seed).fit(fit)
                report(f"{covariance} n_init={n_init} seed {seed} (mean log-likelihood "
                       f"{mixture.score(fit):.3f})", mixture.predict(val_embedding))
    for over in (15, 20, 30):
        for seed in range(2):
            mixture = GaussianMixture(over, covariance_type="full", n_init=3,
                                      random_state=seed).fit(fit)
            groups = entropy_merge(mixture.predict_proba(fit), k)
            val_r = mixture.predict_proba(val_embedding)
            merged = np.stack([val_r[:, g].sum(axis=1) for g in groups], axis=1)
            report(f"K'={over} seed {seed}, entropy-merged to {k}", merged.argmax(axis=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: docs/mixture_probe.py <workdir with a warm_start/ cache>")
    main(sys.argv[1])
