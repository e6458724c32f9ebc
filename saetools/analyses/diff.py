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


def label_evidence(stores, latents, shown) -> tuple[list, list]:
    """Per row: the held-out score of the latent's label (None when it has none) and, for the
    rows ``shown`` with examples, the tokens the latent peaks on in these stores' own documents
    (:func:`saetools.labels.peaks.fires_on`; "" for the others)."""
    from ..labels.peaks import fires_on, label_scores

    scores = label_scores(stores[0])
    fires = fires_on(stores, [j for j, s in zip(latents, shown, strict=True) if s])
    return [scores.get(int(j)) for j in latents], [fires.get(int(j), "") for j in latents]


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
    documents that can be examples are then held in memory (:func:`_grouped_shard_by_shard`);
    the result is the same."""
    from .grouping import assign_groups

    if by not in ("property", "latent"):
        raise ValueError("by must be 'property' or 'latent'")
    min_similarity = group_similarity or DiffOptions.group_similarity
    any_counts = None
    if store_a.lazy or store_b.lazy:
        cols_a, cols_b = column_data(store_a, progress), column_data(store_b, progress)
        frame = diff_columns(cols_a, cols_b, **options)
        frame, any_counts, store_a, store_b = _grouped_shard_by_shard(
            frame, store_a, store_b, examples, example_rows, min_similarity, progress
        )
    else:
        frame = diff_matrices(store_a.matrix, store_b.matrix, **options)
        frame = assign_groups(
            frame,
            store_a.matrix,
            store_b.matrix,
            store_a.peak_starts,
            store_b.peak_starts,
            min_similarity=min_similarity,
        )
    firsts = frame.drop_duplicates("group") if by == "property" else frame
    head_groups = set(firsts.groupby("direction").head(example_rows)["group"].tolist())
    wanted = frame.loc[frame["group"].isin(head_groups), "latent"].to_numpy()
    labels = _label_all(labels, [store_a, store_b], wanted)
    frame.insert(1, "label", [labels.get(int(j), "") for j in frame["latent"]])
    if by == "property":
        frame = _properties(frame, store_a, store_b, any_counts)
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
    frame["label_score"], frame["fires_on"] = label_evidence(
        [store_a, store_b], frame["latent"].to_numpy(), shown
    )
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


def _grouped_shard_by_shard(
    frame, store_a, store_b, examples: int, example_rows: int, min_similarity, progress: bool
):
    """:func:`assign_groups` for stores read shard by shard, and what the report then reads:
    per group of several latents, the documents where any member is active on each side; and
    views of both stores holding only the documents that can be examples. Two passes per
    store: pair counts over the latents grouped (with the top rows of every latent that can be
    shown), then the union counts (with those rows' entries). Equal to the in-memory path."""
    from ..store.sharded import TopRows, entry_rows, iter_blocks, rows_view
    from .cooccurrence import sharded_pair_counts
    from .grouping import (
        MAX_GROUPED,
        PEAK_CHARS,
        assign_groups,
        grouped_rows,
        similarity_from_counts,
    )

    d_sae = store_a.d_sae
    latent_col = frame["latent"].to_numpy()
    tau = np.full(d_sae, np.inf)  # float64, as the in-memory comparisons
    tau[latent_col] = frame["threshold"].to_numpy()
    grouped = np.unique(np.concatenate([latent_col[r] for r in grouped_rows(frame).values()]))
    rank = np.full(d_sae, -1, dtype=np.int64)
    rank[grouped] = np.arange(len(grouped))
    floor = np.full(d_sae, np.inf)
    floor[grouped] = tau[grouped]
    head = frame.groupby("direction", sort=False).head(MAX_GROUPED + example_rows)
    both = np.zeros((len(grouped), len(grouped)), np.int64)
    together = np.zeros_like(both)
    tops = []
    for store in (store_a, store_b):
        top = TopRows(d_sae, max(examples, 1), head["latent"], head["threshold"])

        def pieces(store=store, top=top):
            desc = f"grouping ({store.folder.name})" if progress else None
            for block in iter_blocks(store, desc):
                if examples > 0:
                    top.add(block)
                m = block.matrix
                on = m.data > floor[m.indices]
                indptr = np.concatenate([[0], np.cumsum(on, dtype=np.int64)])[m.indptr]
                piece = sp.csr_matrix(
                    (np.ones(int(on.sum()), np.float32), rank[m.indices[on]], indptr),
                    shape=(m.shape[0], len(grouped)),
                )
                yield piece, block.spans[on, 0]

        for _, joint, near in sharded_pair_counts(pieces, len(grouped), PEAK_CHARS):
            both += joint + joint.T
            together += near + near.T
        tops.append(top)
    counts = frame.set_index("latent")[["count_a", "count_b"]].sum(axis=1)

    def similarity(latents, _tau, floor_sim):
        at = rank[np.asarray(latents, np.int64)]
        sizes = counts.loc[latents].to_numpy()
        pair_both = both[np.ix_(at, at)]
        np.fill_diagonal(pair_both, sizes)
        return similarity_from_counts(
            latents, sizes, pair_both, together[np.ix_(at, at)], floor_sim
        )

    frame = assign_groups(frame, None, None, min_similarity=min_similarity, similarity=similarity)
    group_of = np.full(d_sae, -1, dtype=np.int64)
    sizes = frame["group"].map(frame["group"].value_counts())
    several = frame[sizes.to_numpy() > 1]
    group_of[several["latent"].to_numpy()] = several["group"].to_numpy()
    n_groups = int(frame["group"].max()) + 1 if len(frame) else 0
    any_counts, views = [], []
    for store, top in zip((store_a, store_b), tops, strict=True):
        found = np.zeros(n_groups, dtype=np.int64)

        def union(block, found=found):
            m = block.matrix
            groups = group_of[m.indices]
            on = (groups >= 0) & (m.data > tau[m.indices])
            key = np.unique(entry_rows(block)[on] * max(n_groups, 1) + groups[on])
            found += np.bincount(key % max(n_groups, 1), minlength=n_groups)

        views.append(rows_view(store, top.rows(), visit=union, progress=progress))
        any_counts.append(found)
    counts_by_group = {g: (int(any_counts[0][g]), int(any_counts[1][g])) for g in several["group"]}
    return frame, counts_by_group, views[0], views[1]


def _properties(frame: pd.DataFrame, store_a, store_b, any_counts=None) -> pd.DataFrame:
    """One row per group of the per-latent ``frame``: its best member's statistics, and
    ``any_freq_a``/``any_freq_b``, the share of documents where any member is active (each
    member's rare firings add up in a large group, so the row's test and frequencies are the
    best member's). ``any_counts``: group -> those documents' counts on each side, when
    already counted (stores read shard by shard)."""
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
        if len(members) > 1 and any_counts is not None:
            count_a, count_b = any_counts[int(best["group"])]
            best["any_freq_a"], best["any_freq_b"] = float(count_a) / n_a, float(count_b) / n_b
        elif len(members) > 1:
            latents, tau = members["latent"].to_numpy(), members["threshold"].to_numpy()
            best["any_freq_a"] = float(union_active(store_a.matrix, latents, tau).sum()) / n_a
            best["any_freq_b"] = float(union_active(store_b.matrix, latents, tau).sum()) / n_b
        rows.append(best)
    out = pd.DataFrame(rows)
    first = ["group", "size", "latent", "label", "members", "member_labels"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)
