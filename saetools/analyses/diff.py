"""Dataset diff: which latents are more frequent (or stronger) in B than in A, and vice versa.

For every latent j, with A and B the pooled document vectors of the two sides:

* active in a document when its pooled activation exceeds tau_j = rho * s_j, where s_j is the
  latent's largest pooled activation over A and B together (``threshold="relative"``, rho = 0.5
  by default), or a fixed value;
* freq_a, freq_b = share of documents where it is active; delta = freq_b - freq_a;
* a test per latent: a two-proportion test on the active counts (``test="frequency"``, the
  default; Fisher's exact test when an expected cell is below 5) or Welch's t on the pooled
  activations (``test="welch"``, absent = 0); Benjamini-Hochberg q-values over all latents;
* ranked by effect size (Cohen's d, or Cohen's h for frequencies) among latents with
  q < alpha, both directions; the rest follow by p-value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..options import DiffOptions
from ..store.activity import ColumnData
from .stats import benjamini_hochberg, cohens_h, two_proportion_test, welch_test

TESTS = ("welch", "frequency")


def latent_thresholds(a: ColumnData, b: ColumnData, threshold: str | float, rho: float):
    """Per-latent activity thresholds tau_j (see module docstring)."""
    if threshold == "relative":
        return rho * np.maximum(a.max(), b.max())
    return np.full(a.n_cols, float(threshold))


def diff_matrices(
    a: sp.csr_matrix,
    b: sp.csr_matrix,
    *,
    test: str = DiffOptions.test,
    threshold: str | float = DiffOptions.threshold,
    rho: float = DiffOptions.rho,
    alpha: float = DiffOptions.alpha,
    min_freq: float = DiffOptions.min_freq,
) -> pd.DataFrame:
    """Per-latent statistics of B against A, ranked (see module docstring).

    Returns one row per latent with at least ``min_freq`` frequency on either side, with columns
    ``latent, freq_a, freq_b, delta, ratio, count_a, count_b, mean_a, mean_b, effect, statistic,
    p_value, q_value, significant, direction`` sorted best first.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}")
    n_a, n_b = a.shape[0], b.shape[0]
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A has {a.shape[1]} latents, B has {b.shape[1]}")
    cols_a, cols_b = ColumnData(a), ColumnData(b)
    tau = latent_thresholds(cols_a, cols_b, threshold, rho)
    count_a, count_b = cols_a.counts_above(tau), cols_b.counts_above(tau)
    freq_a, freq_b = count_a / n_a, count_b / n_b
    sum_a, sq_a = cols_a.moments()
    sum_b, sq_b = cols_b.moments()
    if test == "welch":
        statistic, p, effect = welch_test(sum_a, sq_a, n_a, sum_b, sq_b, n_b)
    else:
        p = two_proportion_test(count_a, n_a, count_b, n_b)
        effect = cohens_h(freq_a, freq_b)
        statistic = effect
    q = benjamini_hochberg(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(freq_a > 0, freq_b / freq_a, np.inf)
    ratio[(freq_a == 0) & (freq_b == 0)] = np.nan
    frame = pd.DataFrame(
        {
            "latent": np.arange(a.shape[1], dtype=np.int64),
            "freq_a": freq_a,
            "freq_b": freq_b,
            "delta": freq_b - freq_a,
            "ratio": ratio,
            "count_a": count_a,
            "count_b": count_b,
            "mean_a": sum_a / n_a,
            "mean_b": sum_b / n_b,
            "threshold": tau,
            "effect": effect,
            "statistic": statistic,
            "p_value": p,
            "q_value": q,
        }
    )
    frame["significant"] = frame["q_value"] < alpha
    frame["direction"] = np.where(frame["effect"] >= 0, "B>A", "A>B")
    frame = frame[np.maximum(freq_a, freq_b) >= min_freq] if min_freq > 0 else frame
    # Significant latents by |effect|; the rest by p-value (their effect sizes are mostly noise).
    key = np.where(frame["significant"], -frame["effect"].abs(), frame["p_value"])
    frame = (
        frame.assign(_key=key)
        .sort_values(["significant", "_key"], ascending=[False, True], kind="stable")
        .drop(columns="_key")
    )
    return frame.reset_index(drop=True)


def top_examples(store, latent: int, n: int, threshold: float = 0.0) -> list[dict]:
    """The ``n`` documents of ``store`` where ``latent`` peaks highest (above ``threshold``)."""
    column = store.matrix[:, [latent]].tocoo()
    if column.nnz == 0:
        return []
    order = np.argsort(-column.data, kind="stable")[:n]
    texts = store.docs["text"].to_numpy()
    ids = store.docs["id"].to_numpy()
    out = []
    for i in order:
        row, value = int(column.row[i]), float(column.data[i])
        if value <= threshold:
            break
        span = store.span(row, latent) or (0, 0)
        out.append(
            {
                "row": row,
                "id": str(ids[row]),
                "value": value,
                "text": texts[row],
                "start": span[0],
                "end": span[1],
            }
        )
    return out


def diff_stores(
    store_a,
    store_b,
    *,
    labels: dict[int, str] | None = None,
    examples: int = 3,
    example_rows: int = 20,
    **options,
) -> pd.DataFrame:
    """:func:`diff_matrices` on two stores, with a ``label`` per latent and, for the first
    ``example_rows`` rows, ``examples_a``/``examples_b``: snippets with the peak token marked."""
    frame = diff_matrices(store_a.matrix, store_b.matrix, **options)
    labels = dict(labels or {})
    head = frame["latent"].to_numpy()[:example_rows]
    missing = [j for j in head if j not in labels]
    if missing:
        from ..labels import top_token_labels

        labels.update(top_token_labels([store_a, store_b], missing))
    frame.insert(1, "label", [labels.get(int(j), "") for j in frame["latent"]])
    ex_a, ex_b = [], []
    thresholds = frame["threshold"].to_numpy()
    for i, latent in enumerate(frame["latent"].to_numpy()):
        if i < example_rows and examples > 0:
            ex_a.append(top_examples(store_a, int(latent), examples, thresholds[i]))
            ex_b.append(top_examples(store_b, int(latent), examples, thresholds[i]))
        else:
            ex_a.append([])
            ex_b.append([])
    frame["examples_a"] = ex_a
    frame["examples_b"] = ex_b
    frame.attrs.update(
        n_a=store_a.matrix.shape[0],
        n_b=store_b.matrix.shape[0],
        source_a=store_a.source_name,
        source_b=store_b.source_name,
        options=options,
    )
    return frame
