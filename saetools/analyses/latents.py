"""Which latents an analysis uses: given ids, or the latents whose labels match a query."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import SaetoolsError
from ..options import DEFAULT_RHO
from ..store.activity import active_share, binarize


def activity_frequency(matrix, rho: float = DEFAULT_RHO) -> np.ndarray:
    """Share of documents in which each latent is active (above rho times its scale)."""
    return active_share(binarize(matrix, rho))


def choose_latents(
    store,
    query: str | Sequence[str] | None = None,
    latents: Sequence[int] | None = None,
    *,
    top: int = 20,
    min_similarity: float | None = None,
    min_freq: float = 0.01,
    max_freq: float = 0.99,
    rho: float = DEFAULT_RHO,
    freq=None,
):
    """The latents an analysis is restricted to, as a DataFrame (``latent``, ``label``,
    ``similarity``, ``query``, ``freq``): given ids, or for each query the ``top`` latents whose
    labels are most similar to it among those active in ``[min_freq, max_freq]`` of the
    documents (latents that never fire here cannot separate anything). ``None`` when neither is
    given (all latents). ``freq``: the latents' activity frequencies, if already known."""
    from ..labels import label_index_of_store, labels_of_store

    if query is None and latents is None:
        return None
    if freq is None:
        freq = activity_frequency(store.matrix, rho)
    if latents is not None:
        ids = np.asarray(list(latents), dtype=np.int64)
        bad = ids[(ids < 0) | (ids >= store.d_sae)]
        if len(bad):
            raise SaetoolsError(f"latent {int(bad[0])} is out of range (the SAE has {store.d_sae})")
        labels = labels_of_store(store)
        return pd.DataFrame(
            {
                "latent": ids,
                "label": [labels.get(int(j), "") for j in ids],
                "similarity": np.nan,
                "query": "",
                "freq": freq[ids],
            }
        )
    index = label_index_of_store(store, required=True)
    queries = [query] if isinstance(query, str) else list(query)
    parts = []
    for text in queries:
        match = index.match(text, top=None, threshold=min_similarity)
        usable = (freq[match["latent"]] >= min_freq) & (freq[match["latent"]] <= max_freq)
        match = match[usable].head(top)
        if match.empty:
            closest = ", ".join(repr(v) for v in index.match(text, top=5)["label"])
            raise SaetoolsError(
                f"no latent label matches {text!r} among the latents active in this data "
                f"(closest labels: {closest})"
            )
        parts.append(match.assign(query=text, freq=freq[match["latent"].to_numpy()]))
    return pd.concat(parts).drop_duplicates("latent").reset_index(drop=True)


def parse_latent_ids(text: str | Sequence[int] | None) -> list[int] | None:
    """``"3,17,42"`` -> ``[3, 17, 42]``; a sequence of ids is returned as a list; None stays."""
    if text is None or not isinstance(text, str):
        return None if text is None else [int(j) for j in text]
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SaetoolsError(f"--latents must be comma-separated integers, got {text!r}") from None
