"""Vectorised statistics over sparse columns: per-latent counts, moments, tests, q-values."""

from __future__ import annotations

import numpy as np
from scipy import stats


def two_proportion_test(
    count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int, exact_below: int = 5
) -> np.ndarray:
    """Two-sided p-values: pooled z-test, or Fisher's exact test where an expected cell < 5."""
    p_a, p_b = count_a / n_a, count_b / n_b
    pooled = (count_a + count_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_b - p_a) / se, 0.0)
    p = 2 * stats.norm.sf(np.abs(z))
    total = count_a + count_b
    expected_min = np.minimum.reduce(
        [
            total * n_a / (n_a + n_b),
            total * n_b / (n_a + n_b),
            (n_a + n_b - total) * n_a / (n_a + n_b),
            (n_a + n_b - total) * n_b / (n_a + n_b),
        ]
    )
    small = np.nonzero((expected_min < exact_below) & (total > 0))[0]
    if len(small):
        p[small] = fisher_exact_two_sided(count_a[small], n_a, count_b[small], n_b)
    p[total == 0] = 1.0
    return p


def fisher_exact_two_sided(
    count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int
) -> np.ndarray:
    """Two-sided Fisher exact p-values for many 2x2 tables [[a, n_a - a], [b, n_b - b]].

    Vectorised: the count of B given the column total follows a hypergeometric law; the p-value
    sums the probabilities of all tables no more likely than the observed one (scipy's rule).
    Tables are mirrored so the smaller of (active, inactive) totals sets the support size.
    """
    count_a = np.asarray(count_a, dtype=np.int64)
    count_b = np.asarray(count_b, dtype=np.int64)
    total = count_a + count_b
    flip = total > (n_a + n_b) / 2
    k = np.where(flip, n_a + n_b - total, total)
    x = np.where(flip, n_b - count_b, count_b)
    out = np.ones(len(k))
    for size in np.unique(k):
        rows = np.nonzero(k == size)[0]
        support = np.arange(size + 1)
        pmf = stats.hypergeom.pmf(support, n_a + n_b, size, n_b)  # same for every row
        observed = pmf[x[rows]]
        mask = pmf[None, :] <= observed[:, None] * (1 + 1e-7)
        out[rows] = np.minimum((mask * pmf[None, :]).sum(1), 1.0)
    return out


def welch_test(
    sum_a, sq_a, n_a: int, sum_b, sq_b, n_b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's t-test from per-column sums: returns (t, two-sided p, Cohen's d)."""
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = np.maximum(sq_a / n_a - mean_a**2, 0) * n_a / max(n_a - 1, 1)
    var_b = np.maximum(sq_b / n_b - mean_b**2, 0) * n_b / max(n_b - 1, 1)
    se2 = var_a / n_a + var_b / n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se2 > 0, (mean_b - mean_a) / np.sqrt(se2), 0.0)
        dof = np.where(
            se2 > 0,
            se2**2 / ((var_a / n_a) ** 2 / max(n_a - 1, 1) + (var_b / n_b) ** 2 / max(n_b - 1, 1)),
            1.0,
        )
        pooled_sd = np.sqrt((var_a + var_b) / 2)
        d = np.where(pooled_sd > 0, (mean_b - mean_a) / pooled_sd, 0.0)
    p = 2 * stats.t.sf(np.abs(t), np.maximum(dof, 1.0))
    return t, p, d


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def cohens_h(p_a: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """Effect size of a difference between two proportions: 2 asin sqrt(p_b) - 2 asin sqrt(p_a)."""
    return 2 * np.arcsin(np.sqrt(p_b)) - 2 * np.arcsin(np.sqrt(p_a))
