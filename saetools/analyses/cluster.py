"""Targeted spectral clustering of binarised document vectors.

Keep only the latents related to what the user wants to cluster by (a query matched against the
labels, or all latents), binarise each document on them (active when above rho * s_j, see
:mod:`saetools.store.activity`), compare documents by (weighted) Jaccard similarity

    J(a, b) = Σ_{j ∈ A ∩ B} w_j / Σ_{j ∈ A ∪ B} w_j       (w_j = 1: plain Jaccard)

and cut the similarity graph with regularised spectral clustering (seeded, deterministic).

On chosen latents, w_j = 1 and up to ``dense_limit`` distinct documents the full affinity matrix
is used; beyond, each document keeps only its ``neighbors`` most similar documents (a symmetric
sparse k-nearest-neighbour graph), so memory stays O(n · neighbors). On all latents, each is
weighted by its inverse document frequency, w_j = log(1 / f_j) (sharing a rare latent is
stronger evidence than sharing one that fires in most documents), and the nearest-neighbour
graph is always used (over thousands of latents every pair of documents shares a little; the
structure is in the nearest neighbours). Identical binarised documents are merged first and
carried as weights (exactly equivalent for the dense affinity; on a few targeted latents, 50k
documents often have only a few hundred distinct patterns). Documents with none of the chosen
latents active form cluster -1.
Docs: docs/cluster.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SaetoolsError
from ..store.activity import DEFAULT_RHO, active_share, binarize, latent_scale

DENSE_LIMIT = 5000
NEIGHBORS = 15
# degree regularisation of the spectral embedding, as a share of the mean degree (see
# spectral_labels); keeps a few nearly isolated documents from taking a cluster of their own
REGULARIZATION = 0.1


class Clustering(NamedTuple):
    """Cluster id per document (-1: no chosen latent active) and the binarised matrix used."""

    labels: np.ndarray
    active: sp.csr_matrix  # documents x chosen latents, 0/1
    latents: np.ndarray  # the chosen latents (columns of ``active``)


def jaccard_block(
    rows: sp.csr_matrix,
    active: sp.csr_matrix,
    sizes: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Dense (weighted) Jaccard similarities of ``rows`` (a slice of ``active``) against all of
    ``active``; ``sizes``: the weighted row sums of ``active``."""
    if weights is not None:
        rows = rows @ sp.diags(weights)
    inter = (rows @ active.T).toarray()
    row_sizes = np.asarray(rows.sum(axis=1)).ravel()
    union = row_sizes[:, None] + sizes[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def jaccard_affinity(
    active: sp.csr_matrix,
    dense_limit: int = DENSE_LIMIT,
    neighbors: int = NEIGHBORS,
    weights: np.ndarray | None = None,
):
    """(Weighted) Jaccard affinity between the rows of a 0/1 matrix: dense up to
    ``dense_limit`` rows, else a symmetric sparse graph of each row's ``neighbors`` most similar
    rows. ``weights``: one per column (None: plain Jaccard)."""
    n = active.shape[0]
    weighted = active if weights is None else active @ sp.diags(weights)
    sizes = np.asarray(weighted.sum(axis=1)).ravel()
    if n <= dense_limit:
        return jaccard_block(active, active, sizes, weights)
    keep = min(neighbors, n - 1)
    rows_out, cols_out, vals_out = [], [], []
    step = max(1, 2_000_000 // n)  # ~16 MB of float64 per block
    for lo in range(0, n, step):
        block = jaccard_block(active[lo : lo + step], active, sizes, weights)
        block[np.arange(len(block)), np.arange(lo, lo + len(block))] = 0.0
        nearest = np.argpartition(-block, keep, axis=1)[:, :keep]
        vals = np.take_along_axis(block, nearest, axis=1)
        rows_out.append(np.repeat(np.arange(lo, lo + len(block)), keep))
        cols_out.append(nearest.ravel())
        vals_out.append(vals.ravel())
    graph = sp.csr_matrix(
        (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(n, n),
    )
    graph.eliminate_zeros()
    return graph.maximum(graph.T).tocsr()


def spectral_labels(
    affinity,
    k: int,
    seed: int,
    counts: np.ndarray | None = None,
    regularization: float = REGULARIZATION,
) -> np.ndarray:
    """Regularised normalised spectral clustering (Ng, Jordan & Weiss; degree regularisation
    of Qin & Rohe 2013) of a precomputed affinity, dense or sparse, whose nodes may stand for
    ``counts`` identical documents each.

    With node multiplicities c and degrees d = W c, the leading eigenvectors z of
    M = diag(sqrt(c/d_τ)) W diag(sqrt(c/d_τ)), d_τ = d + τ with τ = ``regularization`` times
    the mean degree, give the document-level eigenvectors y = z / sqrt(c) of the full document
    graph (identical documents have affinity 1 with each other), so clustering the distinct
    patterns with weights c equals clustering every document. Without τ, a handful of documents
    that share almost nothing with the rest form a near-disconnected piece whose eigenvector
    wins a cluster; τ damps the low-degree nodes. Rows of the eigenvector matrix are normalised
    and grouped by weighted k-means (seeded).
    """
    from scipy.sparse.linalg import eigsh
    from sklearn.cluster import KMeans

    n = affinity.shape[0]
    c = np.ones(n) if counts is None else np.asarray(counts, dtype=np.float64)
    if sp.issparse(affinity):
        w = affinity.tocsr().astype(np.float64)
        w.setdiag(1.0)
        degree = np.asarray(w @ c).ravel()
    else:
        w = np.array(affinity, dtype=np.float64)
        np.fill_diagonal(w, 1.0)
        degree = w @ c
    tau = regularization * float(np.average(degree, weights=c))
    scale = np.sqrt(c / (degree + tau))
    if sp.issparse(w):
        m = sp.diags(scale) @ w @ sp.diags(scale)
    else:
        m = scale[:, None] * w * scale[None, :]
    if n <= k + 1:
        raise SaetoolsError(f"only {n} distinct documents; cannot form {k} clusters")
    v0 = np.random.default_rng(seed).standard_normal(n)
    _, vectors = eigsh(m, k=k, which="LA", v0=v0)
    y = vectors / np.sqrt(c)[:, None]
    y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed)
    return model.fit_predict(y, sample_weight=c)


def distinct_rows(active: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The distinct rows of a 0/1 matrix, each row's index among them, and their counts."""
    active = active.tocsr()
    active.sort_indices()
    keys = [
        active.indices[active.indptr[r] : active.indptr[r + 1]].tobytes()
        for r in range(active.shape[0])
    ]
    first: dict[bytes, int] = {}
    inverse = np.empty(len(keys), dtype=np.int64)
    for r, key in enumerate(keys):
        inverse[r] = first.setdefault(key, len(first))
    representatives = np.zeros(len(first), dtype=np.int64)
    representatives[inverse[::-1]] = np.arange(len(keys))[::-1]
    counts = np.bincount(inverse, minlength=len(first))
    return active[representatives], inverse, counts


def cluster_matrix(
    matrix: sp.csr_matrix,
    k: int,
    *,
    latents: np.ndarray | None = None,
    rho: float = DEFAULT_RHO,
    seed: int = 0,
    dense_limit: int | None = None,
    neighbors: int = NEIGHBORS,
    active: sp.csr_matrix | None = None,
    weights: str | np.ndarray | None = "auto",
    regularization: float = REGULARIZATION,
) -> Clustering:
    """Cluster the rows of a pooled matrix into ``k`` groups on the chosen ``latents``
    (``active``: the matrix already binarised with ``rho``, if the caller has it).

    ``weights`` per chosen latent for the Jaccard affinity: an array, None (plain Jaccard),
    ``"idf"`` (log(1 / share of documents where it is active)) or ``"auto"``: idf when
    clustering on all latents, plain when on chosen ones. ``dense_limit``: the most distinct
    documents for a dense affinity, beyond which the ``neighbors`` graph is used; None:
    ``DENSE_LIMIT`` on chosen latents, always the graph on all latents (over thousands of
    latents most pairs of documents share a little, and only the nearest neighbours carry the
    structure). ``regularization``: see :func:`spectral_labels`."""
    n = matrix.shape[0]
    if k < 2:
        raise SaetoolsError(f"k must be at least 2, got {k}")
    if k > n:
        raise SaetoolsError(f"k = {k} is larger than the number of documents ({n})")
    if active is None:
        active = binarize(matrix, rho, latent_scale(matrix))
    chosen = np.arange(matrix.shape[1]) if latents is None else np.asarray(latents, np.int64)
    active = active[:, chosen].tocsr()
    has_any = np.diff(active.indptr) > 0
    labels = np.full(n, -1, dtype=np.int64)
    if has_any.sum() < k:
        raise SaetoolsError(
            f"only {int(has_any.sum())} documents have any of the chosen latents active; "
            f"cannot form {k} clusters (choose more latents or a smaller k)"
        )
    if isinstance(weights, str):
        if weights not in ("auto", "idf"):
            raise SaetoolsError(f"weights must be 'auto', 'idf', None or an array, not {weights!r}")
        weights = idf_weights(active) if weights == "idf" or latents is None else None
    if dense_limit is None:
        dense_limit = DENSE_LIMIT if latents is not None else 0
    patterns, inverse, counts = distinct_rows(active[has_any])
    affinity = jaccard_affinity(patterns, dense_limit, neighbors, weights)
    labels[has_any] = spectral_labels(affinity, k, seed, counts, regularization)[inverse]
    return Clustering(_renumber_by_size(labels), active, chosen)


def idf_weights(active: sp.csr_matrix) -> np.ndarray:
    """log(1 / f_j) per column of a 0/1 matrix, f_j the share of rows where it is 1 (at least
    one row, so a column that is never 1 gets the largest weight, not infinity)."""
    return np.log(1.0 / np.maximum(active_share(active), 1.0 / max(active.shape[0], 1)))


def _renumber_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster ids 0, 1, ... from the largest cluster down (-1 stays -1)."""
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(v), -1) for v in labels], dtype=np.int64)


def describe_clusters(
    result: Clustering,
    labels: dict[int, str],
    *,
    top_latents: int = 5,
    representatives: int = 3,
) -> pd.DataFrame:
    """One row per cluster: ``cluster``, ``size``, ``share``, ``latents`` (the chosen latents
    most enriched in it: id, label, frequency inside and outside) and ``representatives`` (rows
    closest to the cluster's mean vector by cosine)."""
    active = result.active.tocsr().astype(np.float64)
    n = len(result.labels)
    totals = np.asarray(active.sum(axis=0)).ravel()
    rows = []
    for c in sorted(set(result.labels.tolist())):
        inside = result.labels == c
        members = np.nonzero(inside)[0]
        counts_in = np.asarray(active[members].sum(axis=0)).ravel()
        freq_in = counts_in / len(members)
        freq_out = (totals - counts_in) / max(n - len(members), 1)
        lift = freq_in - freq_out
        order = np.argsort(-lift, kind="stable")[:top_latents]
        enriched = [
            {
                "latent": int(result.latents[j]),
                "label": labels.get(int(result.latents[j]), ""),
                "freq_in": float(freq_in[j]),
                "freq_out": float(freq_out[j]),
            }
            for j in order
            if lift[j] > 0.05
        ]
        sizes = np.sqrt(np.asarray(active[members].sum(axis=1)).ravel())
        sims = (
            active[members]
            @ freq_in
            / (np.where(sizes > 0, sizes, 1.0) * (np.linalg.norm(freq_in) or 1.0))
        )
        best = members[np.argsort(-sims, kind="stable")[:representatives]]
        rows.append(
            {
                "cluster": int(c),
                "size": int(inside.sum()),
                "share": float(inside.sum() / n),
                "latents": enriched,
                "representatives": [int(r) for r in best],
            }
        )
    return pd.DataFrame(rows)


class ClusterReport(NamedTuple):
    """Result of clustering a store: ``clusters`` (one row per cluster: size, share, enriched
    latents, representative documents), ``documents`` (``id``, ``cluster``, in store order) and
    ``latents`` (the latents clustered on, with their labels and match scores; None for all)."""

    clusters: pd.DataFrame
    documents: pd.DataFrame
    latents: pd.DataFrame | None


def cluster_store(store, options, *, llm=None, progress: bool = True) -> ClusterReport:
    """Targeted spectral clustering of a store's documents with ``options`` (a
    :class:`saetools.options.ClusterOptions`): on the latents whose labels match its query, the
    latents it names, or all latents. With ``llm`` each cluster also gets a short ``name``."""
    from ..labels import labels_of_store
    from ..text import snippet
    from .latents import choose_latents, parse_latent_ids

    o = options
    active = binarize(store.matrix, o.rho)  # once, for the frequencies and the clustering
    chosen = choose_latents(
        store,
        o.query or None,
        parse_latent_ids(o.latents),
        top=o.top_latents,
        min_similarity=o.min_similarity,
        rho=o.rho,
        freq=active_share(active),
    )
    result = cluster_matrix(
        store.matrix,
        o.k,
        latents=None if chosen is None else chosen["latent"].to_numpy(),
        rho=o.rho,
        seed=o.seed,
        active=active,
    )
    labels = labels_of_store(store)
    clusters = describe_clusters(result, labels, representatives=o.representatives)
    texts, ids = store.docs["text"].to_numpy(), store.docs["id"].astype(str).to_numpy()
    examples = []
    for row in clusters.itertuples():
        items = []
        top_latent = row.latents[0]["latent"] if row.latents else None
        for r in row.representatives:
            span = store.span(r, top_latent) if top_latent is not None else None
            text = snippet(texts[r], *span, width=60) if span else texts[r][:160]
            items.append({"id": ids[r], "text": " ".join(text.split())})
        examples.append(items)
    clusters["representatives"] = examples
    from ..labels.peaks import fires_on, label_scores

    scores = label_scores(store)
    fires = fires_on([store], {item["latent"] for items in clusters["latents"] for item in items})
    for items in clusters["latents"]:
        for item in items:
            item["label_score"] = scores.get(int(item["latent"]))
            item["fires_on"] = fires.get(int(item["latent"]), "")
    if llm is not None:
        from .hypotheses import name_clusters

        clusters.insert(1, "name", name_clusters(clusters, llm, progress=progress))
    documents = pd.DataFrame({"id": ids, "cluster": result.labels})
    clusters.attrs.update(n_docs=len(ids), k=o.k, query=o.query, source=store.source_name)
    return ClusterReport(clusters, documents, chosen)
