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
from ..store.sharded import column_data
from .stats import benjamini_hochberg, cohens_h, two_proportion_test, welch_test

TESTS = ("welch", "frequency")


def latent_thresholds(a: ColumnData, b: ColumnData, threshold: str | float, rho: float):
    """Per-latent activity thresholds tau_j (see module docstring)."""
    if threshold == "relative":
        return rho * np.maximum(a.max(), b.max())
    return np.full(a.n_cols, float(threshold))


def diff_matrices(a: sp.csr_matrix, b: sp.csr_matrix, **options) -> pd.DataFrame:
    """:func:`diff_columns` of two in-memory pooled matrices (documents x latents)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A has {a.shape[1]} latents, B has {b.shape[1]}")
    return diff_columns(ColumnData(a), ColumnData(b), **options)


def diff_columns(
    cols_a,
    cols_b,
    *,
    test: str = DiffOptions.test,
    threshold: str | float = DiffOptions.threshold,
    rho: float = DiffOptions.rho,
    alpha: float = DiffOptions.alpha,
    min_freq: float = DiffOptions.min_freq,
) -> pd.DataFrame:
    """Per-latent statistics of B against A, ranked (see module docstring), from the
    per-column reductions of each side (:class:`~saetools.store.activity.ColumnData`, or
    :class:`~saetools.store.sharded.ShardedColumns` for stores read shard by shard).

    Returns one row per latent with at least ``min_freq`` frequency on either side, with columns
    ``latent, freq_a, freq_b, delta, ratio, count_a, count_b, mean_a, mean_b, effect, statistic,
    p_value, q_value, significant, direction`` sorted best first.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}")
    n_a, n_b = cols_a.n_rows, cols_b.n_rows
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
            "latent": np.arange(cols_a.n_cols, dtype=np.int64),
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


def top_examples(
    store, latent: int, n: int, threshold: float = 0.0, also: dict[int, float] | None = None
) -> list[dict]:
    """The ``n`` documents of ``store`` where ``latent`` peaks highest (above ``threshold``);
    ``also`` (latent -> threshold: the other members of its property) adds ``spans``, where
    each of them peaks in that document when active there."""
    column = store.matrix[:, [latent]].tocoo()
    if column.nnz == 0:
        return []
    order = np.argsort(-column.data, kind="stable")[:n]
    order = order[column.data[order] > threshold]
    rows = column.row[order]
    texts, ids = store.texts(rows), store.ids(rows)
    out = []
    for k, i in enumerate(order):
        row, value = int(column.row[i]), float(column.data[i])
        span = store.span(row, latent) or (0, 0)
        item = {
            "row": row,
            "id": ids[k],
            "value": value,
            "text": texts[k],
            "start": span[0],
            "end": span[1],
        }
        if also is not None:
            spans = []
            for other, tau in also.items():
                if store.matrix[row, other] > tau:
                    spans.append(list(store.span(row, other) or span))
            item["spans"] = spans
        out.append(item)
    return out


def _label_all(labels, stores, wanted) -> dict[int, str]:
    """``labels`` completed with top-token stand-ins for the ``wanted`` latents without one."""
    labels = dict(labels or {})
    missing = [int(j) for j in wanted if int(j) not in labels]
    if missing:
        from ..labels import top_token_labels

        labels.update(top_token_labels(stores, missing))
    return labels


def diff_stores(
    store_a,
    store_b,
    *,
    labels: dict[int, str] | None = None,
    examples: int = 3,
    example_rows: int = 20,
    by: str = "property",
    group_similarity: float | None = None,
    progress: bool = False,
    **options,
) -> pd.DataFrame:
    """:func:`diff_matrices` on two stores, with a ``label`` per latent and, for the first
    ``example_rows`` rows of each direction, ``examples_a``/``examples_b``: snippets with the
    peak token marked.

    ``by="property"`` (default) groups the significant latents of each direction that fire
    together at the same places (:mod:`saetools.analyses.grouping`) into one row per property:
    ``group``, ``size``, the best member's ``latent``, ``label`` and statistics, the ``members``
    and their ``member_labels``, and ``any_freq_a``/``any_freq_b`` (any member active).
    ``by="latent"`` keeps one row per latent, with its ``group``.

    Lazy stores (:attr:`saetools.store.Store.lazy`) are counted shard by shard, and only the
    above-threshold entries of the latents the report groups and shows are then held in
    memory (:func:`_views_for_report`); the result is the same."""
    from .grouping import assign_groups

    if by not in ("property", "latent"):
        raise ValueError("by must be 'property' or 'latent'")
    if store_a.lazy or store_b.lazy:
        cols_a, cols_b = column_data(store_a, progress), column_data(store_b, progress)
        frame = diff_columns(cols_a, cols_b, **options)
        store_a, store_b = _views_for_report(frame, store_a, store_b, example_rows, progress)
    else:
        frame = diff_matrices(store_a.matrix, store_b.matrix, **options)
    frame = assign_groups(
        frame,
        store_a.matrix,
        store_b.matrix,
        store_a.peak_starts,
        store_b.peak_starts,
        min_similarity=group_similarity or DiffOptions.group_similarity,
    )
    firsts = frame.drop_duplicates("group") if by == "property" else frame
    head_groups = set(firsts.groupby("direction").head(example_rows)["group"].tolist())
    wanted = frame.loc[frame["group"].isin(head_groups), "latent"].to_numpy()
    labels = _label_all(labels, [store_a, store_b], wanted)
    frame.insert(1, "label", [labels.get(int(j), "") for j in frame["latent"]])
    if by == "property":
        frame = _properties(frame, store_a, store_b)
    ex_a, ex_b = [], []
    shown = frame["group"].isin(head_groups).to_numpy()
    for i, row in enumerate(frame.itertuples(index=False)):
        if shown[i] and examples > 0:
            also = getattr(row, "member_thresholds", None)
            ex_a.append(top_examples(store_a, int(row.latent), examples, row.threshold, also))
            ex_b.append(top_examples(store_b, int(row.latent), examples, row.threshold, also))
        else:
            ex_a.append([])
            ex_b.append([])
    frame["examples_a"] = ex_a
    frame["examples_b"] = ex_b
    if "member_thresholds" in frame:
        frame = frame.drop(columns="member_thresholds")
    frame.attrs.update(
        n_a=len(store_a),
        n_b=len(store_b),
        source_a=store_a.source_name,
        source_b=store_b.source_name,
        options={**options, "by": by},
        n_latents=len(frame) if by == "latent" else int(frame["size"].sum()),
        n_significant_latents=int(frame["significant"].sum())
        if by == "latent"
        else int(frame.loc[frame["significant"], "size"].sum()),
    )
    return frame


def _views_for_report(frame: pd.DataFrame, store_a, store_b, example_rows: int, progress: bool):
    """Views of both stores that hold only what grouping, examples and labels read: the
    above-threshold entries of the first ``MAX_GROUPED + example_rows`` latents of each
    direction (every group shown has all its members there: only significant latents among
    the first ``MAX_GROUPED`` are grouped, every other latent is a group of its own)."""
    from ..store.sharded import restricted_view
    from .grouping import MAX_GROUPED

    head = frame.groupby("direction", sort=False).head(MAX_GROUPED + example_rows)
    latents, tau = head["latent"].to_numpy(), head["threshold"].to_numpy()
    return (
        restricted_view(store_a, latents, tau, progress=progress),
        restricted_view(store_b, latents, tau, progress=progress),
    )


def _properties(frame: pd.DataFrame, store_a, store_b) -> pd.DataFrame:
    """One row per group of the per-latent ``frame``: its best member's statistics, and
    ``any_freq_a``/``any_freq_b``, the share of documents where any member is active (each
    member's rare firings add up in a large group, so the row's test and frequencies are the
    best member's)."""
    from .grouping import union_active

    n_a, n_b = len(store_a), len(store_b)
    rows = []
    for _, members in frame.groupby("group", sort=False):
        best = members.iloc[0].to_dict()
        best["size"] = len(members)
        best["members"] = [int(j) for j in members["latent"]]
        best["member_labels"] = [str(t) for t in members["label"]]
        best["member_thresholds"] = {
            int(j): float(t)
            for j, t in zip(members["latent"].iloc[1:], members["threshold"].iloc[1:], strict=True)
        }
        best["any_freq_a"], best["any_freq_b"] = best["freq_a"], best["freq_b"]
        if len(members) > 1:
            latents, tau = members["latent"].to_numpy(), members["threshold"].to_numpy()
            best["any_freq_a"] = float(union_active(store_a.matrix, latents, tau).sum()) / n_a
            best["any_freq_b"] = float(union_active(store_b.matrix, latents, tau).sum()) / n_b
        rows.append(best)
    out = pd.DataFrame(rows)
    first = ["group", "size", "latent", "label", "members", "member_labels"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)
