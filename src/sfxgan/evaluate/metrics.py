"""Distribution metrics over feature or embedding arrays of shape (n, d).

Every function takes plain arrays (one row per clip, one column per feature), converts them to
float64 and needs nothing but numpy, so the same code scores embeddings from any audio model:

- `frechet_distance`: Frechet distance between Gaussians fitted to two sets (FID/FAD).
- `kernel_inception_distance`: unbiased polynomial-kernel MMD^2 between two sets (KID).
- `inception_score`: how confident and how varied a classifier's predictions are (IS).
- `ndb`: how many k-means bins of the real data the generated data fills in the wrong
  proportion (NDB).
- `memorisation`: which generated clips are near copies of a training clip (one class at a
  time), and `memorisation_floor`, the share a generator that never copies would get.

Lower is better for the distances, KID and NDB; higher is better for IS; a memorisation share far
above its `quantile` means the generator copies its training data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Memorisation",
    "NDBResult",
    "frechet_distance",
    "frechet_distance_gaussians",
    "inception_score",
    "kernel_inception_distance",
    "kmeans",
    "mean_pairwise_distance",
    "memorisation",
    "memorisation_floor",
    "ndb",
    "nearest_neighbours",
    "pairwise_distances",
    "relative_nearest",
]

# Rows of distance matrices built per block when only a reduction of them is needed, so that
# memory stays at about 32 MB (2**22 float64 values) whatever the number of clips.
_BLOCK_VALUES = 2**22


def _features(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """`x` as a finite float64 (n, d) array with n >= min_rows, or a ValueError naming it."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _same_width(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names} must have the same number of features: {a.shape} vs {b.shape}")


def _squared_distances(a: np.ndarray, b: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)) by ||x||^2 + ||y||^2 - 2 x.y.

    The expanded form is one matrix product instead of an (n, m, d) difference tensor, but it
    cancels catastrophically when the vectors are long compared with their distance. Measuring
    from a common `center` near the data (the distance does not change) keeps the norms small,
    and rounding can still leave tiny negative values, which are clipped to 0.
    """
    a = a - center
    b = b - center
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


# --------------------------------------------------------------------------------------------
# Frechet distance (FID / FAD)
# --------------------------------------------------------------------------------------------


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance matrix; negative rounding eigenvalues become 0."""
    s, u = np.linalg.eigh(cov)
    return (u * np.sqrt(np.clip(s, 0.0, None))) @ u.T


def frechet_distance_gaussians(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    d^2 = ||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1 C2)^{1/2}), the quantity behind the
    Frechet Inception Distance of Heusel et al. 2017 ("GANs trained by a two time-scale update
    rule converge to a local Nash equilibrium") and the Frechet Audio Distance of Kilgour et al.
    2019. It is 0 for identical Gaussians and grows with the squared distance of the means and
    the mismatch of the spreads; the unit is the features' unit squared.

    C1 C2 is not symmetric, so instead of scipy's `sqrtm` the trace is taken as
    tr((C1 C2)^{1/2}) = tr((S C2 S)^{1/2}) with S = C1^{1/2}: S C2 S is similar to C1 C2 (same
    eigenvalues) but symmetric positive semi-definite, so `eigvalsh` gives real eigenvalues
    without the complex round-off `sqrtm` produces for near-singular covariances.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    c1 = np.atleast_2d(np.asarray(cov1, dtype=np.float64))
    c2 = np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(
            "expected means of shape (d,) and covariances of shape (d, d) with the same d, got "
            f"{mu1.shape}, {c1.shape}, {mu2.shape}, {c2.shape}"
        )
    for arr, name in ((mu1, "mu1"), (mu2, "mu2"), (c1, "cov1"), (c2, "cov2")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    # Covariances from data are symmetric only up to rounding; eigh reads one triangle only.
    c1 = 0.5 * (c1 + c1.T)
    c2 = 0.5 * (c2 + c2.T)
    s = _psd_sqrt(c1)
    m = s @ c2 @ s
    m = 0.5 * (m + m.T)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff) + float(np.trace(c1)) + float(np.trace(c2)) - 2.0 * tr_sqrt
    # The exact value is >= 0; rounding can leave a tiny negative number for equal Gaussians.
    return max(value, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the rows of `a` and of `b` (FID / FAD).

    Mean and unbiased sample covariance (np.cov, divisor n - 1) of each set, then
    `frechet_distance_gaussians`. The estimate is biased upwards for small sets (Chong & Forsyth
    2020), so compare values only at equal set sizes; KID has no such bias.
    """
    a = _features(a, "a", min_rows=2)
    b = _features(b, "b", min_rows=2)
    _same_width(a, b, "a and b")
    return frechet_distance_gaussians(
        a.mean(axis=0),
        np.atleast_2d(np.cov(a, rowvar=False)),
        b.mean(axis=0),
        np.atleast_2d(np.cov(b, rowvar=False)),
    )


# --------------------------------------------------------------------------------------------
# Kernel Inception Distance (KID)
# --------------------------------------------------------------------------------------------


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets with k(x, y) = (x.y / d + 1)^3."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    # Unbiased: the within-set terms leave out k(x_i, x_i), which is not a sample of the kernel
    # between two independent draws; the cross term has no such pairs and keeps all m^2.
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_inception_distance(
    a: np.ndarray,
    b: np.ndarray,
    subset_size: int | None = None,
    n_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance of Binkowski et al. 2018 ("Demystifying MMD GANs").

    The unbiased estimate of the squared maximum mean discrepancy between the two distributions
    under the polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over `n_subsets` random
    subsets of m = `subset_size` rows of each set (default and cap: the smaller set's size;
    rows are distinct within a subset). Returns (mean, standard deviation over the subsets,
    population std as in the reference implementations).

    0 means the distributions match up to the kernel's third moments; unlike FID the estimate
    is unbiased, so it is comparable across set sizes, and for matching distributions it
    scatters around 0 and can be slightly negative.
    """
    a = _features(a, "a", min_rows=2)
    b = _features(b, "b", min_rows=2)
    _same_width(a, b, "a and b")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be at least 1, got {n_subsets}")
    m = min(len(a), len(b)) if subset_size is None else min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows, got subset_size={subset_size}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets, dtype=np.float64)
    for i in range(n_subsets):
        xa = a[rng.choice(len(a), size=m, replace=False)]
        xb = b[rng.choice(len(b), size=m, replace=False)]
        values[i] = _unbiased_mmd2(xa, xb)
    return float(values.mean()), float(values.std())


# --------------------------------------------------------------------------------------------
# Inception Score (IS)
# --------------------------------------------------------------------------------------------


def inception_score(probs: np.ndarray, n_splits: int = 1) -> tuple[float, float]:
    """Inception Score of Salimans et al. 2016 ("Improved techniques for training GANs").

    IS = exp(mean_x KL(p(y|x) || p(y))), where p(y|x) is a classifier's class distribution for
    one clip (a row of `probs`, shape (n, K)) and p(y) the mean row. It is high when every clip
    is classified confidently (low-entropy rows) and the classes are used evenly (high-entropy
    p(y)); it lies in [1, K]: 1 when all rows are equal, K when the clips are one-hot and spread
    evenly over the K classes. The rows are cut into `n_splits` consecutive parts, the score is
    computed within each (p(y) taken per part), and (mean, population std) over the parts is
    returned, as in the original code.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"probs must be a non-empty 2-D array (n, K), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or infinite values")
    if np.any(p < 0):
        raise ValueError("probs must be non-negative (rows are class probabilities)")
    sums = p.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > 1e-3):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(
            f"each row of probs must sum to 1 (softmax output); found a row summing to {worst:.6g}"
        )
    if not 1 <= n_splits <= p.shape[0]:
        raise ValueError(f"n_splits must be between 1 and {p.shape[0]} (rows), got {n_splits}")
    # Rows that sum to 1 only within 1e-3 are renormalised, so that p(y) is a distribution and
    # the bounds [1, K] hold.
    p = p / sums[:, None]
    k = p.shape[1]
    scores = np.empty(n_splits, dtype=np.float64)
    for i, part in enumerate(np.array_split(p, n_splits)):
        py = part.mean(axis=0)
        # 0 log 0 = 0: the log is taken only where p(y|x) > 0, and there p(y) > 0 too (p(y) is
        # the mean of rows including this one), so no epsilon shifts the value; a one-hot,
        # balanced set scores exactly K.
        positive = part > 0
        log_ratio = np.log(np.where(positive, part, 1.0)) - np.log(np.where(positive, py, 1.0))
        kl = np.sum(np.where(positive, part * log_ratio, 0.0), axis=1)
        # The mean KL is the mutual information of x and y, in [0, log K]; clip rounding.
        scores[i] = math.exp(min(max(float(kl.mean()), 0.0), math.log(k)))
    return float(scores.mean()), float(scores.std())


# --------------------------------------------------------------------------------------------
# k-means and Number of statistically Different Bins (NDB)
# --------------------------------------------------------------------------------------------


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, center: np.ndarray) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next seed is drawn with probability
    proportional to the squared distance to the nearest seed so far."""
    n = len(x)
    centroids = np.empty((k, x.shape[1]), dtype=np.float64)
    centroids[0] = x[rng.integers(n)]
    closest = _squared_distances(x, centroids[:1], center)[:, 0]
    for j in range(1, k):
        total = closest.sum()
        # All points already sit on a seed (fewer distinct points than k): any point will do.
        idx = rng.integers(n) if total <= 0 else rng.choice(n, p=closest / total)
        centroids[j] = x[idx]
        closest = np.minimum(closest, _squared_distances(x, centroids[j : j + 1], center)[:, 0])
    return centroids


def _lloyd(
    x: np.ndarray, centroids: np.ndarray, n_iter: int, center: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations from `centroids` until the assignments stop changing (at most n_iter)."""
    k = len(centroids)
    labels: np.ndarray | None = None
    for _ in range(n_iter):
        d2 = _squared_distances(x, centroids, center)
        new = np.argmin(d2, axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        if np.any(counts == 0):
            # An empty cluster would keep a centroid no point uses; move it to the point worst
            # served by its current centroid, which is where it lowers the inertia most.
            own = d2[np.arange(len(x)), labels]
            for j in np.flatnonzero(counts == 0):
                # Only points whose cluster keeps another member may move, or a new hole opens.
                movable = counts[labels] > 1
                if not np.any(movable & (own > 0)):
                    break  # fewer distinct points than clusters: nothing left to reseed with
                i = int(np.argmax(np.where(movable, own, -1.0)))
                counts[labels[i]] -= 1
                labels[i] = j
                counts[j] = 1
                own[i] = 0.0
                centroids[j] = x[i]
        # Mean of each cluster; an empty one (only when points are duplicated) keeps its place.
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    d2 = _squared_distances(x, centroids, center)
    labels = np.argmin(d2, axis=1)
    inertia = float(d2[np.arange(len(x)), labels].sum())
    return centroids, labels, inertia


def kmeans(
    x: np.ndarray, k: int, n_iter: int = 50, seed: int = 0, n_init: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """k-means clustering: (centroids (k, d), labels (n,)) minimising the sum of squared
    distances of points to their centroid (the inertia).

    k-means++ seeding, then Lloyd iterations until no assignment changes (at most `n_iter`);
    of `n_init` seedings the one with the lowest inertia is kept. A cluster that runs empty is
    re-seeded with the point farthest from its centroid. The result depends only on `seed`.
    """
    x = _features(x, "x")
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of points ({len(x)}), got {k}")
    if n_iter < 1 or n_init < 1:
        raise ValueError(f"n_iter and n_init must be at least 1, got {n_iter} and {n_init}")
    rng = np.random.default_rng(seed)
    center = x.mean(axis=0)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        result = _lloyd(x, _kmeans_pp(x, k, rng, center), n_iter, center)
        if best is None or result[2] < best[2]:
            best = result
    assert best is not None
    return best[0], best[1]


@dataclass
class NDBResult:
    """Outcome of `ndb`: per k-means bin of the real data, the share of real and of generated
    clips in it, and whether the two shares differ significantly."""

    n_bins: int
    n_different: int
    real_proportions: np.ndarray  # (n_bins,), sums to 1
    generated_proportions: np.ndarray  # (n_bins,), sums to 1
    different: np.ndarray  # (n_bins,) bool

    @property
    def ndb_over_k(self) -> float:
        """NDB/k: the fraction of bins whose share differs; about alpha for a perfect model,
        near 1 for one that misses or over-fills most modes."""
        return self.n_different / self.n_bins


def ndb(
    real: np.ndarray, generated: np.ndarray, k: int, alpha: float = 0.05, seed: int = 0
) -> NDBResult:
    """Number of statistically Different Bins of Richardson & Weiss 2018 ("On GANs and GMMs").

    The real features are clustered into k bins by k-means (the generated ones play no part in
    the bins); both sets are assigned to the nearest centroid, and in each bin a two-sided
    two-proportion z-test with pooled proportion asks whether the real and generated shares
    differ at significance `alpha`. It counts modes the generator drops or over-produces, which
    FID can average away. `k` is clipped to the number of real points.
    """
    real = _features(real, "real")
    generated = _features(generated, "generated")
    _same_width(real, generated, "real and generated")
    if len(real) < 2:
        raise ValueError(f"NDB needs at least 2 real points, got {len(real)}")
    if k < 2:
        raise ValueError(f"NDB needs at least 2 bins, got k={k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    k = min(k, len(real))
    centroids, real_labels = kmeans(real, k, seed=seed)
    gen_labels = np.argmin(_squared_distances(generated, centroids, real.mean(axis=0)), axis=1)
    n_r, n_g = len(real), len(generated)
    p_r = np.bincount(real_labels, minlength=k) / n_r
    p_g = np.bincount(gen_labels, minlength=k) / n_g
    different = np.zeros(k, dtype=bool)
    for j in range(k):
        pooled = (p_r[j] * n_r + p_g[j] * n_g) / (n_r + n_g)
        if pooled <= 0.0 or pooled >= 1.0:
            continue  # no clip in the bin, or every clip: both shares are equal, no variance
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_r + 1.0 / n_g))
        z = (p_r[j] - p_g[j]) / se
        # Two-sided p = 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2); erfc keeps precision in the tail.
        different[j] = math.erfc(abs(z) / math.sqrt(2.0)) < alpha
    return NDBResult(
        n_bins=k,
        n_different=int(different.sum()),
        real_proportions=p_r,
        generated_proportions=p_g,
        different=different,
    )


# --------------------------------------------------------------------------------------------
# Distances, diversity and memorisation
# --------------------------------------------------------------------------------------------


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of `a` and every row of `b`: (len(a), len(b))."""
    a = _features(a, "a")
    b = _features(b, "b")
    _same_width(a, b, "a and b")
    center = np.concatenate([a, b]).mean(axis=0)
    return np.sqrt(_squared_distances(a, b, center))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs i < j: a diversity measure in the features' unit.

    Compare it between generated and real sets of the same size: a generator that collapses to
    a few sounds has a much smaller value than the real data.
    """
    x = _features(x, "x", min_rows=2)
    n = len(x)
    center = x.mean(axis=0)
    rows = max(1, _BLOCK_VALUES // n)
    total = 0.0
    # Blocks of rows against the rows from the block start on, so memory stays bounded.
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        d = np.sqrt(_squared_distances(x[start:stop], x[start:], center))
        i = np.arange(start, stop)[:, None]
        j = np.arange(start, n)[None, :]
        total += float(d[j > i].sum())
    return total / (n * (n - 1) / 2)


def _query_and_reference(
    query: np.ndarray, reference: np.ndarray, exclude_self: bool, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets checked as features of one width; the reference needs `min_rows` rows (one
    more with `exclude_self`, where the query must be the reference itself)."""
    query = _features(query, "query")
    reference = _features(reference, "reference", min_rows=min_rows + exclude_self)
    _same_width(query, reference, "query and reference")
    if exclude_self and query.shape != reference.shape:
        raise ValueError(
            "exclude_self needs query to be the reference set itself, got shapes "
            f"{query.shape} and {reference.shape}"
        )
    return query, reference


def nearest_neighbours(
    query: np.ndarray, reference: np.ndarray, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the Euclidean distance to its nearest reference row and that row's
    index: (distances (n,), indices (n,)).

    With `exclude_self`, `query` must be `reference` itself and row i may not match itself:
    leave-one-out nearest neighbours within one set.
    """
    query, reference = _query_and_reference(query, reference, exclude_self, min_rows=1)
    n, m = len(query), len(reference)
    center = reference.mean(axis=0)
    indices = np.empty(n, dtype=np.intp)
    rows = max(1, _BLOCK_VALUES // m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        d2 = _squared_distances(query[start:stop], reference, center)
        if exclude_self:
            d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        indices[start:stop] = np.argmin(d2, axis=1)
    # The expanded form picks the neighbour; the reported distance is recomputed from the
    # difference, which is exact (0 for an exact copy) where the expanded form leaves rounding
    # noise of about 1e-8 times the vectors' length.
    distances = np.linalg.norm(query - reference[indices], axis=1)
    return distances, indices


def relative_nearest(
    query: np.ndarray, reference: np.ndarray, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query row: the distance to its nearest reference row, that row's index, and the
    ratio of that distance to the row's median distance to all reference rows: (distances,
    indices, ratios), each (n,). A ratio near 1 means the row is about as far from its nearest
    reference as from any; near 0, that one reference row is much closer than the rest.

    With `exclude_self`, `query` must be `reference` itself and row i is measured against the
    others (leave-one-out).
    """
    query, reference = _query_and_reference(query, reference, exclude_self, min_rows=2)
    n, m = len(query), len(reference)
    center = reference.mean(axis=0)
    indices, medians = np.empty(n, dtype=np.intp), np.empty(n)
    rows = max(1, _BLOCK_VALUES // m)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        d = np.sqrt(_squared_distances(query[start:stop], reference, center))
        if exclude_self:
            d[np.arange(stop - start), np.arange(start, stop)] = np.nan
        indices[start:stop] = np.nanargmin(d, axis=1)
        medians[start:stop] = np.nanmedian(d, axis=1)
    # the nearest distance from the difference, exact (0 for a copy), as in nearest_neighbours
    distances = np.linalg.norm(query - reference[indices], axis=1)
    return distances, indices, distances / np.maximum(medians, np.finfo(float).tiny)


@dataclass
class Memorisation:
    """Outcome of `memorisation`: which generated clips are near copies of a real clip."""

    share: float  # fraction of generated clips flagged as near copies
    threshold: float  # ratio (nearest / median distance) below which a clip is a near copy
    quantile: float  # the quantile of the real clips' leave-one-out ratios that set `threshold`
    distances: np.ndarray  # (n_generated,) distance of each generated clip to its nearest real
    nearest: np.ndarray  # (n_generated,) index of that real clip
    ratios: np.ndarray  # (n_generated,) that distance over the clip's median distance to all
    flagged: np.ndarray  # (n_generated,) bool, True for near copies
    reach: float = math.inf  # a near copy is also nearer its real clip than this (see below)


def memorisation(generated: np.ndarray, real: np.ndarray, quantile: float = 0.05) -> Memorisation:
    """Flag generated clips that are closer to one real clip than real clips are to each other.

    Give it one class at a time. The statistic is relative: a clip's distance to its nearest real
    clip over its median distance to all of them (the ratio test Lowe 2004 uses to tell a true
    match from a near one, with the median for the second-nearest so that two takes of one
    sound in the real set do not hide a copy of either). The threshold is the `quantile` of the
    same ratio for each real clip against the others, so a fresh draw from the real
    distribution is flagged at a rate of about `quantile`, and a share well above it means the
    generator reproduces training clips (the nearest-neighbour test used for GAN memorisation
    since Goodfellow et al. 2014, calibrated against real-real distances as the authenticity
    test of Alaa et al. 2022).

    Why a ratio and not the distance itself: a generated clip that is smoother than the real
    ones (a GAN's texture: rain with less frame-to-frame variation than a recording) is nearer
    to *every* real clip than they are to each other, and an absolute threshold flagged it
    (80 % of generated demo rain) without anything being copied. Such a clip's ratio stays
    near the real clips' (its nearest real clip is hardly nearer than the median one); a copy,
    even with noise, a few milliseconds' shift or another gain, has one real clip far nearer
    than the rest. And a near copy must be near in absolute terms too: nearer its real clip
    than the median real clip is to its own nearest neighbour (`reach`), so that a clip far
    from every real clip (white noise: 20 % of it was flagged by the ratio alone, when one
    real clip of a class happened to lie in its direction) is no copy. Exact copies are always
    flagged, even when duplicates in the real set make the threshold 0.
    """
    generated = _features(generated, "generated")
    real = _features(real, "real", min_rows=3)
    _same_width(generated, real, "generated and real")
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")
    real_nn, _, real_ratios = relative_nearest(real, real, exclude_self=True)
    threshold = float(np.quantile(real_ratios, quantile))
    reach = float(np.median(real_nn))
    distances, nearest, ratios = relative_nearest(generated, real)
    # Strict '<' so that the real clips at the threshold itself do not count; a distance that is
    # 0 up to rounding relative to the data's spread is a copy whatever the threshold is.
    scale = math.sqrt(float(np.mean(np.sum((real - real.mean(axis=0)) ** 2, axis=1))))
    flagged = ((ratios < threshold) & (distances < reach)) | (distances <= 1e-9 * scale)
    return Memorisation(
        share=float(flagged.mean()),
        threshold=threshold,
        quantile=quantile,
        distances=distances,
        nearest=nearest,
        ratios=ratios,
        flagged=flagged,
        reach=reach,
    )


def memorisation_floor(real: np.ndarray, quantile: float = 0.05) -> float:
    """The near-copy share of a generator that never copies: each real clip in turn is treated
    as generated and tested against the others, with the threshold recomputed without it.

    Needed because at a few dozen clips the quantile threshold is set by the lowest real ratios,
    and a fresh clip falls under it more often than `quantile` says."""
    real = _features(real, "real")
    n = len(real)
    if n < 4:
        return float("nan")
    d = np.sqrt(_squared_distances(real, real, real.mean(axis=0)))
    flagged = 0
    for i in range(n):
        others = np.delete(np.delete(d, i, axis=0), i, axis=1)  # (n - 1, n - 1)
        np.fill_diagonal(others, np.nan)
        nearest = np.nanmin(others, axis=1)
        ratios = nearest / np.maximum(np.nanmedian(others, axis=1), 1e-300)
        own = np.delete(d[i], i)
        near = own.min() < np.median(nearest)
        flagged += bool(
            near and own.min() / max(np.median(own), 1e-300) < np.quantile(ratios, quantile)
        )
    return flagged / n
