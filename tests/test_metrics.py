"""Distribution metrics against values worked out by hand or by an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sfxgan.evaluate.metrics import (
    Memorisation,
    NDBResult,
    frechet_distance,
    frechet_distance_gaussians,
    inception_score,
    kernel_inception_distance,
    kmeans,
    mean_pairwise_distance,
    memorisation,
    ndb,
    nearest_neighbours,
    pairwise_distances,
)


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random rotation of random positive eigenvalues: a non-diagonal covariance."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * rng.uniform(0.1, 3.0, size=d)) @ q.T


# --- Frechet distance ---------------------------------------------------------------------------


def test_frechet_diagonal_covariances_closed_form():
    # ||mu1 - mu2||^2 = 1 + 0 + 4; sum (sqrt s1 - sqrt s2)^2 = (1-2)^2 + (2-1)^2 + (3-1)^2 = 6.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    fd = frechet_distance_gaussians(mu1, np.diag([1.0, 4.0, 9.0]), mu2, np.diag([4.0, 1.0, 1.0]))
    assert fd == pytest.approx(11.0, abs=1e-10)


def test_frechet_commuting_non_diagonal_covariances():
    # Both share the eigenvectors (1, 1)/sqrt 2 and (1, -1)/sqrt 2 with eigenvalues (4, 1) and
    # (9, 1), so tr((C1 C2)^{1/2}) = 2*3 + 1*1 and FD = (2 - 3)^2 + (1 - 1)^2 = 1.
    c1 = np.array([[2.5, 1.5], [1.5, 2.5]])
    c2 = np.array([[5.0, 4.0], [4.0, 5.0]])
    assert frechet_distance_gaussians(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(1.0)


def test_frechet_non_commuting_2x2_closed_form():
    # For a 2x2 matrix with non-negative eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    # C1 C2 = [[2, 4], [1, 8]]: trace 10, det 3 * 4 = 12, so tr sqrt = sqrt(10 + 4 sqrt 3).
    c1 = np.array([[2.0, 1.0], [1.0, 2.0]])
    c2 = np.array([[1.0, 0.0], [0.0, 4.0]])
    expected = 4.0 + 5.0 - 2.0 * math.sqrt(10.0 + 4.0 * math.sqrt(3.0))
    assert frechet_distance_gaussians(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(expected)


def test_frechet_scaled_identity_and_random_rotated_pair():
    # tr((aI bI)^{1/2}) = d sqrt(ab), so FD = d (sqrt a - sqrt b)^2.
    d = 6
    fd = frechet_distance_gaussians(np.zeros(d), 2.0 * np.eye(d), np.zeros(d), 8.0 * np.eye(d))
    assert fd == pytest.approx(d * (math.sqrt(2.0) - math.sqrt(8.0)) ** 2)

    # Reference: the eigenvalues of the non-symmetric product C1 C2 (real, positive).
    rng = np.random.default_rng(1)
    c1, c2 = random_spd(rng, d), random_spd(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    tr_sqrt = np.sum(np.sqrt(np.linalg.eigvals(c1 @ c2).real))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt
    assert frechet_distance_gaussians(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance_gaussians(mu2, c2, mu1, c1) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_equal_singular_gaussians_is_zero_not_negative():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5))
    c = x.T @ x  # rank 3 in d = 5
    mu = rng.normal(size=5)
    fd = frechet_distance_gaussians(mu, c, mu, c)
    assert 0.0 <= fd < 1e-8


def test_frechet_from_samples():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(loc=1.0, size=(20000, 4))
    # Means differ by 1 in each of 4 dimensions, covariances are both I: FD = 4.
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.1)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_rejects_too_few_or_mismatched_samples():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="same number of features"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


# --- KID ----------------------------------------------------------------------------------------


def test_kid_hand_computed_two_point_sets():
    # k(x, y) = (x.y / d + 1)^3 with d = 2 and rows (t, t): x.y / d equals the 1-D product.
    # k_aa(1, -1) = 0; k_bb(2, 3) = 7^3 = 343; k_ab: 27, 64, -1, -8 -> mean 20.5.
    # Unbiased MMD^2 = 0 + 343 - 2 * 20.5 = 302; every subset of size 2 is the whole set.
    a = np.array([[1.0, 1.0], [-1.0, -1.0]])
    b = np.array([[2.0, 2.0], [3.0, 3.0]])
    mean, std = kernel_inception_distance(a, b, n_subsets=5)
    assert mean == pytest.approx(302.0)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_kid_of_a_set_with_itself_is_the_unbiased_offset():
    # Same set on both sides: 2 * (off-diagonal mean of K) - 2 * (mean of all of K), slightly
    # negative because the unbiased within-set terms leave out the diagonal.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 8))
    k = (x @ x.T / 8 + 1.0) ** 3
    n = len(x)
    expected = 2.0 * (k.sum() - np.trace(k)) / (n * (n - 1)) - 2.0 * k.mean()
    mean, _ = kernel_inception_distance(x, x, n_subsets=3)
    assert mean == pytest.approx(expected, rel=1e-9)
    assert expected < -1e-3 and abs(mean) < 0.05


def test_kid_same_distribution_near_zero_shifted_clearly_larger():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(500, 8))
    b = rng.normal(size=(500, 8))
    shifted = rng.normal(loc=1.0, size=(500, 8))
    same, same_std = kernel_inception_distance(a, b, subset_size=200, n_subsets=20)
    far, _ = kernel_inception_distance(a, shifted, subset_size=200, n_subsets=20)
    assert abs(same) < 0.05
    assert same_std > 0  # subsets of 200 out of 500 differ
    assert far > 1.0 and far > 20 * abs(same)


def test_kid_is_deterministic_and_validates():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    assert kernel_inception_distance(a, b, 10, 5, seed=1) == kernel_inception_distance(
        a, b, 10, 5, seed=1
    )
    with pytest.raises(ValueError):
        kernel_inception_distance(a, b, subset_size=1)
    with pytest.raises(ValueError):
        kernel_inception_distance(a[:1], b)


# --- Inception Score ----------------------------------------------------------------------------


def test_is_of_balanced_one_hot_predictions_is_k():
    k = 5
    probs = np.tile(np.eye(k), (10, 1))  # every consecutive block of 5 rows covers all classes
    mean, std = inception_score(probs)
    assert mean == pytest.approx(k, abs=1e-6)
    mean, std = inception_score(probs, n_splits=5)
    assert mean == pytest.approx(k, abs=1e-6) and std == pytest.approx(0.0, abs=1e-9)


def test_is_of_identical_rows_is_one():
    probs = np.tile([0.2, 0.3, 0.5], (20, 1))
    assert inception_score(probs)[0] == pytest.approx(1.0, abs=1e-9)


def test_is_hand_computed():
    # p(y) = (0.75, 0.25); KL row 1 = log(4/3); KL row 2 = 0.5 log(2/3) + 0.5 log 2 = 0.5 log(4/3).
    # IS = exp(0.75 log(4/3)) = (4/3)^0.75.
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert inception_score(probs)[0] == pytest.approx((4.0 / 3.0) ** 0.75)


def test_is_of_random_predictions_lies_in_bounds():
    rng = np.random.default_rng(7)
    k, alpha = 10, 0.5
    probs = rng.dirichlet(np.full(k, alpha), size=300)
    mean, std = inception_score(probs, n_splits=3)

    # Independently, per split: the mean KL is the mutual information H(p(y)) - E[H(p(y|x))].
    def entropy(p: np.ndarray) -> np.ndarray:
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)

    per_split = [
        math.exp(entropy(part.mean(axis=0)) - entropy(part).mean())
        for part in np.array_split(probs, 3)
    ]
    assert mean == pytest.approx(np.mean(per_split), rel=1e-9)
    assert std == pytest.approx(np.std(per_split), rel=1e-6)
    assert std > 0

    # And what Dirichlet(0.5) rows must give: p(y) is near uniform (H = log K) and a row's
    # expected entropy is digamma(K alpha + 1) - digamma(alpha + 1) = H_5 + 2 log 2 - 2 for
    # K = 10, alpha = 0.5, so IS ~ 10 exp(-1.670) = 1.88. A finite split's p(y) is a little less
    # than uniform (seeds 0-19 gave 1.81-1.91, this one 1.85); a margin of 0.1 that the wrong
    # formulas tried leave far behind (the KL reversed: 3.08, the exp left out: 0.62).
    expected_row_entropy = sum(1.0 / n for n in range(1, 6)) + 2 * math.log(2) - 2
    assert mean == pytest.approx(k * math.exp(-expected_row_entropy), abs=0.1)


def test_is_rejects_invalid_probabilities():
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(np.array([[1.2, -0.2], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.array([[0.6, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError):
        inception_score(np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        inception_score(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="n_splits"):
        inception_score(np.eye(3), n_splits=4)


# --- k-means and NDB ----------------------------------------------------------------------------


def blobs(rng: np.random.Generator, per_blob: int) -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.5 * rng.normal(size=(per_blob, 2)) for c in centers])
    return x, np.repeat(np.arange(3), per_blob)


def test_kmeans_recovers_three_blobs():
    x, truth = blobs(np.random.default_rng(8), 50)
    centroids, labels = kmeans(x, 3, seed=0)
    assert centroids.shape == (3, 2) and labels.shape == (150,)
    blob_labels = [set(labels[truth == b]) for b in range(3)]
    assert all(len(s) == 1 for s in blob_labels)  # each blob is one cluster
    assert len(set().union(*blob_labels)) == 3  # and the clusters differ
    for b in range(3):
        expected = x[truth == b].mean(axis=0)
        assert np.allclose(centroids[labels[truth == b][0]], expected)
    again = kmeans(x, 3, seed=0)
    assert np.array_equal(again[0], centroids) and np.array_equal(again[1], labels)


def test_kmeans_edge_cases():
    x = np.array([[0.0], [1.0], [5.0], [9.0]])
    centroids, labels = kmeans(x, 4)
    assert sorted(centroids[:, 0]) == [0.0, 1.0, 5.0, 9.0] and len(set(labels)) == 4
    # Fewer distinct points than clusters: must not crash, every point on its centroid.
    dup = np.array([[0.0], [0.0], [0.0], [3.0], [3.0]])
    centroids, labels = kmeans(dup, 3)
    assert np.allclose(centroids[labels], dup)
    with pytest.raises(ValueError):
        kmeans(x, 5)


def test_kmeans_reseeds_an_empty_cluster_with_the_farthest_point():
    # Seeds at 100 and 200 attract no point; the first empty one takes 20 (farthest from the
    # centroid 0.05), the second then takes 10.1, and Lloyd settles on the three groups.
    from sfxgan.evaluate.metrics import _lloyd

    x = np.array([[0.0], [0.1], [10.0], [10.1], [20.0]])
    centroids, labels, inertia = _lloyd(x, np.array([[0.05], [100.0], [200.0]]), 50, x.mean(0))
    assert np.allclose(np.sort(centroids[:, 0]), [0.05, 10.05, 20.0])
    assert labels[0] == labels[1] and labels[2] == labels[3] and len(set(labels)) == 3
    assert inertia == pytest.approx(4 * 0.05**2)


def test_ndb_two_proportion_z_test_by_hand():
    # Two tight real clusters of 50 at 0 and 10; generated 60 / 40. Pooled share 0.55,
    # se = sqrt(0.55 * 0.45 * (1/100 + 1/100)) = 0.070356, z = 0.1 / se = 1.4213,
    # two-sided p = 0.155: different at alpha 0.2, not at 0.1 (one-sided p = 0.078 would be).
    rng = np.random.default_rng(9)
    real = np.concatenate([0.01 * rng.normal(size=(50, 1)), 10 + 0.01 * rng.normal(size=(50, 1))])
    generated = np.concatenate([np.zeros((60, 1)), np.full((40, 1), 10.0)])
    loose = ndb(real, generated, k=2, alpha=0.2)
    assert isinstance(loose, NDBResult)
    assert np.allclose(loose.real_proportions, [0.5, 0.5])
    assert np.allclose(np.sort(loose.generated_proportions), [0.4, 0.6])
    assert loose.n_different == 2 and loose.different.all() and loose.ndb_over_k == 1.0
    strict = ndb(real, generated, k=2, alpha=0.1)
    assert strict.n_different == 0 and not strict.different.any()


def test_ndb_identical_and_shifted_sets():
    rng = np.random.default_rng(10)
    real, _ = blobs(rng, 100)
    same = ndb(real, real.copy(), k=10)
    assert same.n_bins == 10 and same.n_different == 0
    assert same.real_proportions.sum() == pytest.approx(1.0)
    assert same.generated_proportions.sum() == pytest.approx(1.0)
    far = ndb(real, real + 100.0, k=10)
    assert far.n_different >= 9 and far.ndb_over_k >= 0.9
    assert far.generated_proportions.sum() == pytest.approx(1.0)


def test_ndb_clips_k_and_validates():
    rng = np.random.default_rng(11)
    real = rng.normal(size=(5, 2))
    assert ndb(real, rng.normal(size=(20, 2)), k=50).n_bins == 5
    with pytest.raises(ValueError):
        ndb(real, real, k=1)
    with pytest.raises(ValueError):
        ndb(real[:1], real, k=2)


# --- distances, diversity, memorisation ---------------------------------------------------------


def test_pairwise_distances_exact_and_safe_for_large_offsets():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 0.0], [6.0, 8.0], [3.0, 0.0]])
    assert np.allclose(pairwise_distances(a, b), [[0.0, 10.0, 3.0], [5.0, 5.0, 4.0]])
    # Far from the origin the plain expanded form ||x||^2 + ||y||^2 - 2 x.y of values near 1e14
    # cancels to errors of about 1e-2 in the squared distances.
    off = np.array([1e7 + 0.123456789, -0.987654321e7])
    d = pairwise_distances(a + off, b + off)
    assert np.all(np.isfinite(d))
    assert np.max(np.abs(d - [[0.0, 10.0, 3.0], [5.0, 5.0, 4.0]])) < 1e-6


def test_mean_pairwise_distance_of_unit_square():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_distance(square) == pytest.approx((4.0 + 2.0 * math.sqrt(2.0)) / 6.0)
    with pytest.raises(ValueError):
        mean_pairwise_distance(square[:1])


def test_nearest_neighbours_with_and_without_self():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    dist, idx = nearest_neighbours(x, x, exclude_self=True)
    assert np.allclose(dist, [1.0, 1.0, 2.0, 4.0]) and list(idx) == [1, 0, 1, 2]
    dist, idx = nearest_neighbours(x, x)
    assert np.all(dist == 0.0) and list(idx) == [0, 1, 2, 3]
    dist, idx = nearest_neighbours(np.array([[2.9], [-5.0]]), x)
    assert np.allclose(dist, [0.1, 5.0]) and list(idx) == [2, 0]


def test_memorisation_flags_copies_of_training_clips():
    rng = np.random.default_rng(12)
    real = rng.normal(size=(400, 4))
    picked = rng.permutation(400)[:100]
    copies = real[picked] + 1e-6 * rng.normal(size=(100, 4))
    result = memorisation(copies, real, quantile=0.1)
    assert isinstance(result, Memorisation)
    assert result.share == 1.0 and result.flagged.all()
    assert np.array_equal(result.nearest, picked)
    assert np.all(result.distances < 1e-5) and np.all(result.ratios < 1e-4)
    assert result.threshold > 0.05 and result.quantile == 0.1


def test_memorisation_of_a_fresh_draw_is_about_the_quantile():
    rng = np.random.default_rng(13)
    real = rng.normal(size=(400, 4))
    fresh = rng.normal(size=(400, 4))
    result = memorisation(fresh, real, quantile=0.1)
    assert 0.05 < result.share < 0.15
    # The threshold is the 10 % quantile of the real clips' leave-one-out ratios of the nearest
    # distance to the median distance, computed here from the full distance matrix.
    d = np.linalg.norm(real[:, None] - real[None], axis=-1)
    np.fill_diagonal(d, np.nan)
    loo = np.nanmin(d, axis=1) / np.nanmedian(d, axis=1)
    assert result.threshold == pytest.approx(np.quantile(loo, 0.1))
    to_real = np.linalg.norm(fresh[:, None] - real[None], axis=-1)
    ratios = to_real.min(axis=1) / np.median(to_real, axis=1)
    assert np.allclose(result.ratios, ratios)
    assert np.array_equal(result.flagged, result.ratios < result.threshold)


def test_memorisation_flags_exact_copies_even_with_duplicates_in_real():
    rng = np.random.default_rng(14)
    real = 50.0 + rng.normal(size=(50, 3))
    real[1] = real[0]  # a duplicate makes the 0-quantile threshold 0
    generated = np.concatenate([real[[0, 5]], rng.normal(loc=50.0, size=(1, 3))])
    result = memorisation(generated, real, quantile=0.0)
    assert result.threshold == 0.0
    assert list(result.flagged) == [True, True, False]
    assert result.nearest[1] == 5 and result.distances[1] == 0.0


def test_memorisation_threshold_is_strict():
    # Real points 0, 1, 3, 7: leave-one-out nearest / median distances 1/3, 1/2, 2/3, 4/6, so
    # the 0-quantile threshold is 1/3. A point at 1.5 has distances 1.5, 0.5, 1.5, 5.5 (ratio
    # 0.5 / 1.5 = 1/3, as close as the real clips get relative to the rest, not closer: not
    # flagged); one at 6.5 has 6.5, 5.5, 3.5, 0.5 (ratio 0.5 / 4.5: flagged).
    real = np.array([[0.0], [1.0], [3.0], [7.0]])
    result = memorisation(np.array([[1.5], [6.5]]), real, quantile=0.0)
    assert result.threshold == pytest.approx(1 / 3)
    assert np.allclose(result.ratios, [1 / 3, 0.5 / 4.5])
    assert list(result.flagged) == [False, True] and result.share == 0.5
