"""One latent's page: its label and the label's scores, how often it fires, where it fires
hardest (with the firing span), the tokens it peaks on in this data, which latents fire with it,
and its activation histogram.

Density is the share of documents where the latent is active at all (pooled activation > 0).
Co-occurring latents are ranked by P(other | this) = |D_this ∩ D_other| / |D_this| over the
documents where both are active, among latents active in at least ``min_support`` documents, with
NPMI beside it (docs/correlate.md) so a share that only reflects a dense latent is visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import SaetoolsError

HISTOGRAM_BINS = 20
TOKEN_DOCS = 50
"""Documents (strongest first) whose peak tokens make a page's ``top_tokens``."""


class FeaturePage(NamedTuple):
    """Everything shown on a latent's page."""

    latent: int
    label: str
    label_info: dict  # source, score (held-out F1), score_kind, pearson where measured
    n_docs: int
    n_active: int
    density: float
    max_activation: float
    examples: pd.DataFrame  # rank, row, id, value, start, end, text
    cooccurring: pd.DataFrame  # latent, label, share, npmi, n_both
    histogram: tuple[np.ndarray, np.ndarray]  # counts [bins], edges [bins + 1] (active docs)
    top_tokens: list[tuple[str, int]]  # where it peaks in this data: (token, documents)


def _examples(store, latent: int, column: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """The documents ``rows`` (strongest first) with the latent's value and peak span."""
    ids = store.docs["id"].astype(str).to_numpy()
    texts = store.docs["text"].astype(str).to_numpy()
    out = []
    for rank, row in enumerate(rows, start=1):
        start, end = store.span(int(row), latent) or (0, 0)
        out.append(
            {
                "rank": rank,
                "row": int(row),
                "id": ids[row],
                "value": float(column[row]),
                "start": int(start),
                "end": int(end),
                "text": texts[row],
            }
        )
    return pd.DataFrame(out, columns=["rank", "row", "id", "value", "start", "end", "text"])


def _top_tokens(store, latent: int, rows: np.ndarray, top: int = 8) -> list[tuple[str, int]]:
    """The tokens where the latent peaks in the documents ``rows``, with how many of them peak
    there (what it fires on in this data, whatever its label says); empty for a document-level
    store."""
    from collections import Counter

    if store.document_level:
        return []
    texts = store.docs["text"].to_numpy()
    counts: Counter = Counter()
    for row in rows:
        start, end = store.span(int(row), latent) or (0, 0)
        token = " ".join(str(texts[row])[start:end].split())
        if token:
            counts[token] += 1
    return counts.most_common(top)


def _cooccurring(store, latent: int, active_rows: np.ndarray, top: int, min_support: int):
    """Latents most often active where this one is, with their share and NPMI."""
    from ..labels import labels_of_store
    from .cooccurrence import npmi

    columns = ["latent", "label", "share", "npmi", "n_both"]
    if not len(active_rows):
        return pd.DataFrame(columns=columns)
    active = store.matrix > 0
    both = np.asarray(active[active_rows].sum(axis=0)).ravel().astype(np.int64)
    counts = np.asarray(active.sum(axis=0)).ravel().astype(np.int64)
    both[latent] = 0
    keep = np.flatnonzero((both > 0) & (counts >= min_support))
    share = both[keep] / len(active_rows)
    order = keep[np.lexsort((keep, -share))][:top]
    scores = npmi(both[order], np.full(len(order), len(active_rows)), counts[order], len(store))
    labels = labels_of_store(store)
    return pd.DataFrame(
        {
            "latent": order.astype(np.int64),
            "label": [labels.get(int(j), "") for j in order],
            "share": both[order] / len(active_rows),
            "npmi": scores,
            "n_both": both[order],
        },
        columns=columns,
    )


def feature_page(store, latent: int, *, top: int = 10, min_support: int = 3) -> FeaturePage:
    """The page of ``latent`` in a store: label and label scores, density, top ``top``
    documents with the span where it peaked, the ``top`` latents that co-occur with it most,
    and a histogram of its pooled activation over the documents where it fires."""
    from ..labels import label_rows_of_store

    latent = int(latent)
    if not 0 <= latent < store.d_sae:
        raise SaetoolsError(f"latent {latent} is out of range (the SAE has {store.d_sae})")
    column = store.matrix[:, [latent]].toarray().ravel()
    active_rows = np.flatnonzero(column > 0)
    strongest = active_rows[np.lexsort((active_rows, -column[active_rows]))]
    row = label_rows_of_store(store).get(latent, {})
    info = {
        key: row[key]
        for key in ("source", "score", "score_kind", "pearson", "precision", "recall", "model")
        if row.get(key) is not None
    }
    values = column[active_rows]
    counts, edges = (
        np.histogram(values, bins=HISTOGRAM_BINS)
        if len(values)
        else (np.zeros(HISTOGRAM_BINS, np.int64), np.linspace(0, 1, HISTOGRAM_BINS + 1))
    )
    return FeaturePage(
        latent=latent,
        label=str(row.get("label", "")),
        label_info=info,
        n_docs=len(store),
        n_active=len(active_rows),
        density=len(active_rows) / max(len(store), 1),
        max_activation=float(values.max()) if len(values) else 0.0,
        examples=_examples(store, latent, column, strongest[:top]),
        cooccurring=_cooccurring(store, latent, active_rows, top, min_support),
        histogram=(counts.astype(np.int64), edges.astype(np.float64)),
        top_tokens=_top_tokens(store, latent, strongest[:TOKEN_DOCS]),
    )
