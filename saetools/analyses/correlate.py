"""Correlation audits: NPMI between latents (or between latents and a metadata column).

Every document is binarised (latent j active when its pooled activation exceeds rho * s_j, see
:mod:`saetools.store.activity`); for latents i and j over n documents,

    NPMI(i, j) = log(p(i,j) / (p(i) p(j))) / -log p(i,j)

with p(i) = n_i / n and p(i,j) = n_ij / n. Pairs with fewer than ``min_support`` joint documents
are skipped. Pairs of latents whose labels say the same thing (cosine of their MiniLM label
embeddings above ``max_label_similarity``) are dropped, so near-synonyms ("sports" / "football")
do not drown out real findings. Docs: docs/correlate.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SaetoolsError
from ..options import CorrelateOptions
from ..store.activity import DEFAULT_RHO, binarize, latent_scale
from .cooccurrence import top_pairs

DEFAULT_MAX_LABEL_SIMILARITY = CorrelateOptions.max_label_similarity
DEFAULT_PASSAGE_CHARS = CorrelateOptions.passage_chars
DEFAULT_MAX_FREQ = CorrelateOptions.max_freq


def default_min_support(n_docs: int) -> int:
    """10 documents, or 1% of them on large sets, whichever is larger: below that, pairs of rare
    latents that meet in a handful of documents reach NPMI ≈ 1 by chance and fill the ranking."""
    return max(10, int(np.ceil(0.01 * n_docs)))


def _labels_of(latents: np.ndarray, labels: dict[int, str]) -> list[str]:
    return [labels.get(int(j), "") for j in latents]


def correlate_matrices(
    x: sp.csr_matrix,
    y: sp.csr_matrix | None = None,
    *,
    labels_x: dict[int, str] | None = None,
    labels_y: dict[int, str] | None = None,
    label_index=None,
    y_names: list[str] | None = None,
    rho: float = DEFAULT_RHO,
    min_support: int | None = None,
    max_label_similarity: float | None = DEFAULT_MAX_LABEL_SIMILARITY,
    peak_starts: sp.csr_matrix | None = None,
    passage_chars: int | None = DEFAULT_PASSAGE_CHARS,
    max_freq: float = DEFAULT_MAX_FREQ,
    top: int = CorrelateOptions.top,
) -> pd.DataFrame:
    """Ranked NPMI pairs of the pooled matrix ``x`` (latents × latents), or between ``x`` and
    ``y`` (rows aligned: a second text field's pooled matrix, or a 0/1 indicator matrix of a
    metadata column whose column names are ``y_names``).

    Columns: ``latent_a``, ``label_a``, ``latent_b``, ``label_b``, ``count_a``, ``count_b``,
    ``count_ab``, ``npmi``, ``label_similarity``; for a metadata column ``latent_b``/``label_b``
    are replaced by ``value``.

    ``peak_starts`` (same sparsity as ``x``, data = character offset + 1 of each latent's peak
    token; :meth:`saetools.store.Store.peak_starts`) enables the same-passage filter of
    latents x latents pairs: a pair whose peaks lie within ``passage_chars`` characters of each
    other in at least half of the documents where both fire describes one passage twice (two
    latents of one token or phrase) and is dropped. ``same_passage`` reports that share.
    Latents active in more than ``max_freq`` of the documents are left out (they co-occur with
    everything).
    """
    if y is not None and y.shape[0] != x.shape[0]:
        raise SaetoolsError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    labels_x = labels_x or {}
    labels_y = labels_x if y is None else (labels_y or {})
    n = x.shape[0]
    min_support = default_min_support(n) if min_support is None else min_support
    bx = _drop_ubiquitous(binarize(x, rho), max_freq)
    by = None
    if y is not None:
        by = (
            y.tocsr().astype(np.float32)
            if y_names is not None
            else _drop_ubiquitous(binarize(y, rho), max_freq)
        )
    filtering = label_index is not None and max_label_similarity is not None and y_names is None
    local = peak_starts is not None and passage_chars is not None and y is None

    def reject(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        out = np.zeros(len(left), dtype=bool)
        if filtering:
            out |= label_index.pair_similarity(left, right) > max_label_similarity
        if local:
            out |= same_passage_share(bx, peak_starts, left, right, passage_chars) >= 0.5
        return out

    i, j, joint, score = top_pairs(
        bx, by, min_support=min_support, keep=top, reject=reject if filtering or local else None
    )
    count_x = np.diff(bx.tocsc().indptr)
    count_y = count_x if by is None else np.diff(by.tocsc().indptr)
    passage = same_passage_share(bx, peak_starts, i, j, passage_chars) if local else None
    return _pairs_frame(
        (i, j, joint, score), count_x, count_y, labels_x, labels_y, label_index, y_names, passage
    )


def _pairs_frame(pairs, count_x, count_y, labels_x, labels_y, label_index, y_names, passage):
    """The ranked pairs ``(i, j, joint, score)`` as :func:`correlate_matrices` returns them."""
    i, j, joint, score = pairs
    frame = pd.DataFrame(
        {
            "latent_a": i.astype(np.int64),
            "label_a": _labels_of(i, labels_x),
            "latent_b": j.astype(np.int64),
            "label_b": _labels_of(j, labels_y),
            "count_a": count_x[i].astype(np.int64),
            "count_b": count_y[j].astype(np.int64),
            "count_ab": joint,
            "npmi": score,
        }
    )
    if y_names is not None:
        frame = frame.drop(columns=["label_b"]).rename(columns={"latent_b": "value"})
        frame["value"] = [y_names[v] for v in j]
        return frame.rename(columns={"latent_a": "latent", "label_a": "label"})
    if label_index is not None:
        frame["label_similarity"] = label_index.pair_similarity(i, j)
    else:
        frame["label_similarity"] = np.nan
    if passage is not None:
        frame["same_passage"] = passage
    return frame


def correlate_sharded(
    store,
    *,
    labels: dict[int, str] | None = None,
    label_index=None,
    rho: float = DEFAULT_RHO,
    min_support: int | None = None,
    max_label_similarity: float | None = DEFAULT_MAX_LABEL_SIMILARITY,
    passage_chars: int | None = DEFAULT_PASSAGE_CHARS,
    max_freq: float = DEFAULT_MAX_FREQ,
    top: int = CorrelateOptions.top,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`correlate_matrices` of a store's latent pairs (with its peak positions), read
    shard by shard: the per-latent scales and activity counts take a pass each, then one pass
    per block of latents counts co-occurring pairs and, for the same-passage filter, the pairs
    whose peaks lie within ``passage_chars`` (so the filter's share is exact, not sampled).
    Equal to the in-memory result."""
    from ..store.sharded import ShardedColumns, iter_blocks
    from .cooccurrence import rank_pairs, sharded_pair_counts

    labels = labels or {}
    n = len(store)
    min_support = default_min_support(n) if min_support is None else min_support
    tau = rho * ShardedColumns(store, progress=progress).max()  # float64, as binarize
    counts = np.zeros(store.d_sae, dtype=np.int64)
    for block in iter_blocks(store, f"activity ({store.folder.name})" if progress else None):
        m = block.matrix
        counts += np.bincount(m.indices[m.data > tau[m.indices]], minlength=store.d_sae)
    kept = counts <= max_freq * n
    counts = np.where(kept, counts, 0)
    floor = np.where(kept, tau, np.inf)

    def active_pieces():
        desc = f"pairs ({store.folder.name})" if progress else None
        for block in iter_blocks(store, desc):
            m = block.matrix
            on = m.data > floor[m.indices]
            indptr = np.concatenate([[0], np.cumsum(on, dtype=np.int64)])[m.indptr]
            piece = sp.csr_matrix(
                (np.ones(int(on.sum()), np.float32), m.indices[on], indptr), shape=m.shape
            )
            yield piece, block.spans[on, 0]

    filtering = label_index is not None and max_label_similarity is not None
    current: dict = {}
    shares: dict[tuple[int, int], float] = {}  # same-passage share of every pair looked at

    def reject(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        out = np.zeros(len(left), dtype=bool)
        if filtering:
            out |= label_index.pair_similarity(left, right) > max_label_similarity
        if passage_chars is not None:
            lo, joint, near = current["block"]
            share = near[left - lo, right] / np.maximum(joint[left - lo, right], 1)
            pairs = zip(left.tolist(), right.tolist(), strict=True)
            shares.update(zip(pairs, share.tolist(), strict=True))
            out |= share >= 0.5
        return out

    def blocks():
        for lo, joint, near in sharded_pair_counts(active_pieces, store.d_sae, passage_chars):
            current["block"] = (lo, joint, near)
            yield lo, joint

    pairs = rank_pairs(
        blocks(),
        counts,
        counts,
        n,
        min_support=min_support,
        keep=top,
        reject=reject if filtering or passage_chars is not None else None,
    )
    passage = None
    if passage_chars is not None:
        passage = np.array([shares[(int(a), int(b))] for a, b in zip(*pairs[:2], strict=True)])
    return _pairs_frame(pairs, counts, counts, labels, labels, label_index, None, passage)


def same_passage_share(
    active: sp.csr_matrix, peak_starts: sp.csr_matrix, left, right, window: int
) -> np.ndarray:
    """For each pair, the share of documents where both latents are active whose peaks lie
    within ``window`` characters of each other."""
    active_c = active.tocsc()
    starts_c = peak_starts.tocsc()
    columns: dict[int, dict] = {}

    def column(j: int) -> dict:
        if j not in columns:
            rows = active_c.indices[active_c.indptr[j] : active_c.indptr[j + 1]]
            lo, hi = starts_c.indptr[j], starts_c.indptr[j + 1]
            where = dict(
                zip(starts_c.indices[lo:hi].tolist(), starts_c.data[lo:hi].tolist(), strict=True)
            )
            columns[j] = {int(r): where.get(int(r), 0) for r in rows}
        return columns[j]

    out = np.zeros(len(left))
    for k, (a, b) in enumerate(zip(left, right, strict=True)):
        ca, cb = column(int(a)), column(int(b))
        rows = ca.keys() & cb.keys()
        if rows:
            near = sum(abs(ca[r] - cb[r]) <= window for r in rows)
            out[k] = near / len(rows)
    return out


def _drop_ubiquitous(active: sp.csr_matrix, max_freq: float) -> sp.csr_matrix:
    """Zero the latents active in more than ``max_freq`` of the rows: a latent that fires almost
    everywhere co-occurs with everything, and NPMI rates such pairs close to 1."""
    counts = np.diff(active.tocsc().indptr)
    keep = counts <= max_freq * active.shape[0]
    if keep.all():
        return active
    out = (active @ sp.diags(keep.astype(np.float32))).tocsr()
    out.eliminate_zeros()
    return out


def column_indicators(values: pd.Series) -> tuple[sp.csr_matrix, list[str]]:
    """0/1 matrix (documents × distinct values) of a categorical column, and the value names."""
    names = sorted(values.astype(str).unique().tolist())
    lookup = {v: k for k, v in enumerate(names)}
    cols = values.astype(str).map(lookup).to_numpy()
    n = len(values)
    matrix = sp.csr_matrix(
        (np.ones(n, np.float32), cols.astype(np.int64), np.arange(n + 1, dtype=np.int64)),
        shape=(n, len(names)),
    )
    return matrix, names


def both_active_rows(
    x: sp.csr_matrix, y: sp.csr_matrix, a: int, b: int, rho: float, n: int = 2
) -> list[int]:
    """Up to ``n`` rows where column ``a`` of ``x`` and column ``b`` of ``y`` are both active,
    strongest first (by the smaller of the two normalised activations)."""
    col_a = x[:, a].toarray().ravel()
    col_b = y[:, b].toarray().ravel()
    sa, sb = col_a.max(initial=0), col_b.max(initial=0)
    if sa <= 0 or sb <= 0:
        return []
    both = (col_a > rho * sa) & (col_b > rho * sb)
    strength = np.minimum(col_a / sa, col_b / sb)
    rows = np.nonzero(both)[0]
    return rows[np.argsort(-strength[rows], kind="stable")][:n].tolist()


def sharded_both_active_rows(store, pairs, rho: float, n: int) -> list[list[int]]:
    """:func:`both_active_rows` of each latent pair of a store read shard by shard (same
    thresholds, strengths and order, in float32 as there)."""
    from ..store.sharded import ShardedColumns, entry_rows, iter_blocks

    latents = np.unique(np.asarray(pairs, dtype=np.int64).reshape(-1))
    scale = ShardedColumns(store).max().astype(np.float32)  # the stored float32 maxima
    floor = np.full(store.d_sae, np.inf, dtype=np.float32)
    floor[latents] = [rho * s if s > 0 else np.inf for s in scale[latents]]
    best = [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in pairs]
    for block in iter_blocks(store):
        m = block.matrix
        on = m.data > floor[m.indices]
        ids, rows, values = m.indices[on], entry_rows(block)[on], m.data[on]
        order = np.lexsort((rows, ids))
        ids, rows, values = ids[order], rows[order], values[order]
        for k, (a, b) in enumerate(pairs):
            lo_a, hi_a = np.searchsorted(ids, [a, a + 1])
            lo_b, hi_b = np.searchsorted(ids, [b, b + 1])
            both, at_a, at_b = np.intersect1d(
                rows[lo_a:hi_a], rows[lo_b:hi_b], assume_unique=True, return_indices=True
            )
            if not len(both):
                continue
            strength = np.minimum(
                values[lo_a:hi_a][at_a] / scale[a], values[lo_b:hi_b][at_b] / scale[b]
            )
            kept_rows = np.concatenate([best[k][0], both])
            kept = np.concatenate([best[k][1], strength])
            pick = np.lexsort((kept_rows, -kept))[:n]
            best[k] = (kept_rows[pick], kept[pick])
    return [rows.tolist() for rows, _ in best]


__all__ = [
    "correlate_matrices",
    "column_indicators",
    "both_active_rows",
    "default_min_support",
    "latent_scale",
]


def pair_examples(store_x, store_y, frame: pd.DataFrame, rho: float, n: int = 2) -> list[list]:
    """Per row of a pairs frame, up to ``n`` documents where both latents fire: ``id`` and a
    snippet around each latent's peak (``snippet_a`` in X's text, ``snippet_b`` in Y's)."""
    from ..text import snippet

    pairs = list(zip(frame["latent_a"].astype(int), frame["latent_b"].astype(int), strict=True))
    if store_x.lazy and store_y is store_x:
        from ..store.sharded import rows_view

        found = sharded_both_active_rows(store_x, pairs, rho, n)
        store_x = store_y = rows_view(store_x, np.concatenate([[], *found]).astype(np.int64))
    else:
        found = [both_active_rows(store_x.matrix, store_y.matrix, a, b, rho, n) for a, b in pairs]
    out = []
    for (a, b), rows in zip(pairs, found, strict=True):
        texts_x, texts_y, ids = store_x.texts(rows), store_y.texts(rows), store_x.ids(rows)
        examples = []
        for k, row in enumerate(rows):
            sa = store_x.span(row, int(a)) or (0, 0)
            sb = store_y.span(row, int(b)) or (0, 0)
            examples.append(
                {
                    "id": ids[k],
                    "snippet_a": snippet(texts_x[k], *sa, width=50),
                    "snippet_b": snippet(texts_y[k], *sb, width=50),
                }
            )
        out.append(examples)
    return out


def column_values(data, column: str, source) -> dict[str, str]:
    """``id -> value`` of a metadata column of a data file (rows without a value are absent)."""
    from ..corpus import read_corpus

    if not isinstance(data, str | Path):
        raise SaetoolsError("--with-column needs a data file")
    corpus = read_corpus(data, column, **source.corpus_options, warn=False)
    return {doc.id: doc.text for doc in corpus.documents}


def correlate_data(data, source, options, *, progress: bool = True) -> pd.DataFrame:
    """NPMI audit of a data file or store in one of three modes (docs/correlate.md): latent pairs
    within one field; one field's latents against another's (``x_field``/``y_field`` or chat
    roles); latents against a metadata column (``with_column``). Ranked pairs, with examples."""
    import sys
    from dataclasses import replace

    from ..labels import label_index_of_store, labels_of_store
    from ..store.cache import is_store, store_for

    o = options
    if o.cross and o.with_column:
        raise SaetoolsError("use either --x-field/--y-field (or roles) or --with-column, not both")
    if o.cross:
        if is_store(data):
            raise SaetoolsError("--x-field/--y-field need the data file, not a store")
        if (o.x_field or source.field) == (o.y_field or source.field) and o.x_role == o.y_role:
            raise SaetoolsError("--x-field/--y-field (or --x-role/--y-role) must differ")
        sides = [
            replace(source, field=f or source.field, role=r or source.role)
            for f, r in ((o.x_field, o.x_role), (o.y_field, o.y_role))
        ]
        store_x, store_y = (store_for(data, side, progress=progress) for side in sides)
        store_x, store_y = store_x.aligned_with(store_y)
    else:
        store_x = store_y = store_for(data, source, progress=progress)
    labels = labels_of_store(store_x)
    index = label_index_of_store(store_x, required=False)
    if index is None and o.max_label_similarity is not None and not o.with_column and progress:
        print("warning: the SAE has no labels; the label-similarity filter is off", file=sys.stderr)
    common = {"rho": o.rho, "min_support": o.min_support, "top": o.top, "max_freq": o.max_freq}
    if o.with_column:
        origin = data if not is_store(data) else store_x.source_name
        if origin is None or not Path(origin).exists():
            raise SaetoolsError(
                f"--with-column needs the data file; the store's source {origin!r} is not there"
            )
        values = column_values(origin, o.with_column, source)
        ids = store_x.docs["id"].astype(str)
        keep = ids.isin(values.keys()).to_numpy()
        if not keep.any():
            raise SaetoolsError(f"{origin}: no document has a value in column {o.with_column!r}")
        store_x = store_x.select_rows(keep.nonzero()[0])
        indicators, names = column_indicators(pd.Series([values[i] for i in ids[keep]]))
        frame = correlate_matrices(
            store_x.matrix, indicators, labels_x=labels, y_names=names, **common
        )
        frame.attrs.update(mode="column", column=o.with_column, n_docs=store_x.matrix.shape[0])
        return frame
    similarity = o.max_label_similarity
    similarity = similarity if index is not None and (similarity or 1) < 1 else None
    if store_x.lazy and store_y is store_x:
        frame = correlate_sharded(
            store_x,
            labels=labels,
            label_index=index,
            max_label_similarity=similarity,
            passage_chars=o.passage_chars or None,
            progress=progress,
            **common,
        )
    else:
        frame = correlate_matrices(
            store_x.matrix,
            None if store_y is store_x else store_y.matrix,
            labels_x=labels,
            labels_y=labels,
            label_index=index,
            max_label_similarity=similarity,
            peak_starts=store_x.peak_starts if store_y is store_x else None,
            passage_chars=o.passage_chars or None,
            **common,
        )
    frame["examples"] = (
        pair_examples(store_x, store_y, frame, o.rho, o.examples)
        if o.examples
        else [[] for _ in range(len(frame))]
    )
    frame.attrs.update(
        mode="fields" if o.cross else "pairs",
        x=o.x_field or o.x_role or source.field,
        y=o.y_field or o.y_role or source.field,
        n_docs=len(store_x),
    )
    return frame
