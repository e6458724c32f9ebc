"""Property search: score documents by the latents that express a property.

A query picks latents with weights w_j — by label similarity (the ``top_latents`` labels closest
to the query text, w_j = (cosine similarity)^4 so the best matches dominate), or from an example
text (``like``: the example's own latents, w_j = its normalised activation times the latent's
inverse document frequency).
A document's score is the weighted sum of its normalised pooled activations:

    score(d) = Σ_j w_j · v_dj / s_j

where s_j is latent j's largest pooled activation in the store. Docs: docs/search.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SaetoolsError
from ..store.activity import DEFAULT_RHO, active_share, binarize, latent_scale


class LatentStats(NamedTuple):
    """What a query needs of every latent: its scale s_j, the documents it fires in, and the
    share where it is active (the analyses' relative threshold)."""

    scale: np.ndarray
    doc_freq: np.ndarray
    active_freq: np.ndarray


def sharded_stats(store) -> LatentStats:
    """:class:`LatentStats` of a lazy store, shard by shard (saved after the first time)."""
    from ..store.sharded import ShardedColumns

    columns = ShardedColumns(store)
    active = columns.active_counts(DEFAULT_RHO)
    return LatentStats(columns.max(), columns.entries(), active / max(len(store), 1))


class Searcher:
    """Precomputed column-major, scale-normalised activations of a store for fast queries.

    ``stats`` (of the whole store) lets ``matrix`` hold only the entries of the latents a
    query looks at (a view from :func:`~saetools.store.sharded.rows_view`)."""

    def __init__(self, matrix: sp.csr_matrix, stats: LatentStats | None = None) -> None:
        self.n_docs, self.n_latents = matrix.shape
        csc = matrix.tocsc().astype(np.float32)
        if stats is None:
            scale = latent_scale(matrix)
            # share of documents where each latent is active, once per store, not per query
            active = active_share(binarize(matrix, DEFAULT_RHO, scale))
            stats = LatentStats(scale, np.diff(csc.indptr), active)
        self.scale, self.doc_freq, self.active_freq = stats
        safe = np.where(self.scale > 0, self.scale, 1.0).astype(np.float32)
        csc.data /= np.repeat(safe, np.diff(csc.indptr))
        self.columns = csc

    def scores(self, latents: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Score of every document for the weighted latents (float32 ``[n_docs]``)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        indptr, indices, data = self.columns.indptr, self.columns.indices, self.columns.data
        for j, w in zip(latents, weights, strict=True):
            lo, hi = indptr[j], indptr[j + 1]
            out[indices[lo:hi]] += np.float32(w) * data[lo:hi]
        return out

    def top(
        self, latents: np.ndarray, weights: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best rows (with a positive score) and their scores, best first."""
        scores = self.scores(np.asarray(latents), np.asarray(weights))
        n = min(n, self.n_docs)
        pick = np.argpartition(-scores, n - 1)[:n] if n < self.n_docs else np.arange(self.n_docs)
        pick = pick[np.lexsort((pick, -scores[pick]))]
        pick = pick[scores[pick] > 0]
        return pick, scores[pick]

    def contributions(self, row: int, latents: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Each chosen latent's share of one document's score (``w_j · v_dj / s_j``)."""
        indptr, indices, data = self.columns.indptr, self.columns.indices, self.columns.data
        out = np.zeros(len(latents))
        for k, (j, w) in enumerate(zip(latents, weights, strict=True)):
            lo, hi = indptr[j], indptr[j + 1]
            pos = np.searchsorted(indices[lo:hi], row)
            if pos < hi - lo and indices[lo + pos] == row:
                out[k] = w * data[lo + pos]
        return out

    def example_weights(self, pooled: sp.csr_matrix, top: int) -> tuple[np.ndarray, np.ndarray]:
        """Latents and weights from an example's pooled vector: normalised activation times
        idf = log(n / (1 + df)), the ``top`` largest."""
        row = pooled.tocsr()
        if row.nnz == 0:
            raise SaetoolsError("the --like example activates no latent")
        latents = row.indices.astype(np.int64)
        safe = np.where(self.scale[latents] > 0, self.scale[latents], np.inf)
        idf = np.log(self.n_docs / (1.0 + self.doc_freq[latents]))
        weights = np.minimum(row.data / safe, 1.0) * np.maximum(idf, 0.0)
        order = np.argsort(-weights, kind="stable")[:top]
        order = order[(weights[order] > 0) & (self.doc_freq[latents[order]] > 0)]
        if not len(order):
            raise SaetoolsError("the --like example shares no distinctive latent with this data")
        return latents[order], weights[order]


def sharded_top_rows(store, scale: np.ndarray, latents, weights, n: int) -> np.ndarray:
    """The rows of the ``n`` best scores (:meth:`Searcher.top`) of a store read shard by shard,
    each document's score summed in the same order and precision as in memory."""
    from ..store.sharded import entry_rows, iter_blocks

    latents = np.asarray(latents, dtype=np.int64)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    chosen = np.zeros(len(scale), dtype=bool)
    chosen[latents] = True
    rows, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    for block in iter_blocks(store):
        m = block.matrix
        pick = chosen[m.indices]
        ids, values = m.indices[pick], m.data[pick]
        at = entry_rows(block)[pick] - block.lo
        out = np.zeros(m.shape[0], dtype=np.float32)
        for j, w in zip(latents, weights, strict=True):
            mine = ids == j
            out[at[mine]] += np.float32(w) * (values[mine] / safe[j])
        positive = np.flatnonzero(out > 0)
        rows = np.concatenate([rows, positive + block.lo])
        scores = np.concatenate([scores, out[positive]])
        keep = np.lexsort((rows, -scores))[:n]
        rows, scores = rows[keep], scores[keep]
    return rows


def results_frame(
    store, searcher: Searcher, rows, scores, latents, weights, labels
) -> pd.DataFrame:
    """Rows of a search result: rank, id, score, the best-matching latent with its label, and a
    snippet with that latent's peak marked."""
    from ..text import snippet

    texts, ids = store.texts(rows), store.ids(rows)
    out = []
    for rank, (row, score) in enumerate(zip(rows, scores, strict=True), start=1):
        share = searcher.contributions(int(row), latents, weights)
        best = int(latents[int(np.argmax(share))])
        span = store.span(int(row), best) or (0, 0)
        out.append(
            {
                "rank": rank,
                "id": ids[rank - 1],
                "score": float(score),
                "row": int(row),
                "latent": best,
                "label": labels.get(best, ""),
                "snippet": snippet(texts[rank - 1], *span, width=60),
            }
        )
    columns = ["rank", "id", "score", "row", "latent", "label", "snippet"]
    return pd.DataFrame(out, columns=columns)


SEARCH_WEIGHT_POWER = 4
"""Label similarity to this power is a latent's weight: the best-matching labels dominate,
loosely related ones only break ties (measured on planted apologies: AP 0.82-0.86 vs 0.70-0.80
with linear weights)."""
SEARCH_RELATIVE_SIMILARITY = 0.85
"""Latents whose label similarity is below this share of the best match's are left out: short
labels (a single peak token such as "not" or "all") sit at a similarity of ~0.45 to any short
query and, active in many documents, drown the latent the query names. With 0.9, "apologises to
the user" kept only a polysemantic apology latent (label F1 0.27) and lost the one that fires on
apologies (F1 0.40) on the 20M-token pack: AP 0.36; with 0.85 and F1-weighting, 0.86."""
UNSCORED_LABEL_F1 = 0.5
"""The trust given to a label with no held-out score (imported or hand-written labels)."""


def query_weights(chosen: pd.DataFrame, label_f1: dict[int, float]):
    """Latents and weights of a query from its label matches (``latent``, ``similarity``):
    those within :data:`SEARCH_RELATIVE_SIMILARITY` of the best match, weighted by similarity
    to the power :data:`SEARCH_WEIGHT_POWER` times the label's held-out F1 (``label_f1``;
    :data:`UNSCORED_LABEL_F1` for a label without a score)."""
    best = float(chosen["similarity"].max())
    chosen = chosen[chosen["similarity"] >= SEARCH_RELATIVE_SIMILARITY * best]
    latents = chosen["latent"].to_numpy()
    weights = np.clip(chosen["similarity"].to_numpy(), 0.0, None) ** SEARCH_WEIGHT_POWER
    trust = np.array([label_f1.get(int(j), UNSCORED_LABEL_F1) for j in latents], dtype=float)
    return latents, weights * trust


def last_store_cache(build):
    """Decorate ``build(store, **kw)`` so that its result is kept for the last store asked
    (same folder, documents and entries) and built again only for another one."""
    kept: dict = {}

    def cached(store, **kwargs):
        key = (str(store.folder), len(store), store.manifest.get("nnz"))
        if key not in kept:
            kept.clear()
            kept[key] = build(store, **kwargs)
        return kept[key]

    cached.__doc__ = build.__doc__
    cached.__name__ = build.__name__
    return cached


@last_store_cache
def searcher_of_store(store) -> Searcher:
    """The :class:`Searcher` of a store (built once per process, for the last store asked)."""
    return Searcher(store.matrix)


def check_query(query: str | None, like: str | None) -> None:
    """Exactly one of a query text and ``--like`` (checked before any encoding)."""
    if (query is None) == (like is None):
        raise SaetoolsError("give a query or --like TEXT (one of them)")


def search_store(
    store, query: str | None, options, *, llm=None, device="cpu", progress: bool = True
) -> pd.DataFrame:
    """Documents of a store that have a property, best first (``rank``, ``id``, ``score``, the
    best-matching ``latent`` and ``label``, a ``snippet``); ``options`` is a
    :class:`saetools.options.SearchOptions`. ``query`` is matched against the latent labels;
    ``options.like`` uses the latents of an example text instead (encoded on ``device``)."""
    from ..labels import labels_of_store
    from ..labels.peaks import fires_on, label_scores
    from .latents import choose_latents

    o = options
    check_query(query, o.like)
    if o.steer or o.dense:
        from .steer import steered_search

        if o.like is not None or o.rerank:
            raise SaetoolsError("--steer/--dense search by a query text; drop --like/--rerank")
        return steered_search(store, query, o, device=device, progress=progress)
    labels = labels_of_store(store)
    if store.lazy:  # whole-store statistics, then only the best documents' entries
        stats = sharded_stats(store)
        searcher = Searcher(sp.csr_matrix((len(store), store.d_sae), dtype=np.float32), stats)
    else:
        searcher = searcher_of_store(store)
    label_f1 = label_scores(store)
    if o.like is not None:
        example = store.encode_like([o.like], device=device)
        latents, weights = searcher.example_weights(example, o.top_latents)
    else:
        chosen = choose_latents(
            store,
            query,
            top=o.top_latents,
            min_similarity=o.min_similarity,
            min_freq=1e-12,
            freq=searcher.active_freq,
        )
        latents, weights = query_weights(chosen, label_f1)
    fires = fires_on([store], latents)
    if store.lazy:
        from ..store.sharded import rows_view

        best = sharded_top_rows(store, searcher.scale, latents, weights, max(o.top, o.rerank or 0))
        store = rows_view(store, best, progress=progress)
        searcher = Searcher(store.matrix, stats)
    rows, scores = searcher.top(latents, weights, max(o.top, o.rerank or 0))
    frame = results_frame(store, searcher, rows, scores, latents, weights, labels)
    if o.rerank:
        from .rerank import rerank_frame

        frame = rerank_frame(frame, store, query or o.like, o.rerank, llm=llm, progress=progress)
    frame = frame.head(o.top).reset_index(drop=True)
    frame.attrs.update(
        query=query,
        like=o.like,
        latents=[
            {
                "latent": int(j),
                "label": labels.get(int(j), ""),
                "weight": float(w),
                "label_score": label_f1.get(int(j)),
                "fires_on": fires.get(int(j), ""),
            }
            for j, w in zip(latents, weights, strict=True)
        ],
        n_docs=len(store),
    )
    return frame
