"""Group the latents of a diff that say the same thing into properties.

An SAE often has several latents for one property (seven latents firing on one opening
sentence). Two significant latents of the same direction are *co-located* in a document when
both are active there and their peaks lie within ``chars`` characters of each other; their
similarity is

    sim(i, j) = #documents where i and j are co-located / #documents where i or j is active

(a Jaccard index that only counts agreements at the same place; without stored positions, the
plain Jaccard index of the active sets). Latents are grouped by average-linkage agglomerative
clustering on 1 - sim, cut at ``1 - min_similarity``. A group (a property) is active in a
document where any member is; its best member is the one with the largest effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..options import GROUP_SIMILARITY

PEAK_CHARS = 40
"""Peaks closer than this many characters count as the same place."""
MAX_GROUPED = 300
"""At most this many significant latents per direction are grouped (the rest stay alone)."""


def _activity(matrix: sp.csr_matrix, latents: np.ndarray, tau: np.ndarray, peaks=None):
    """``(active, positions)``: documents x chosen latents, as CSC; ``active`` is 1 where latent
    ``latents[c]`` is above ``tau[c]``, ``positions`` holds the peak offsets (+1) of those
    entries (None without ``peaks``)."""
    part = matrix[:, latents].tocsc()
    part.sort_indices()
    cols = np.repeat(np.arange(len(latents)), np.diff(part.indptr))
    keep = part.data > tau[cols]
    indptr = _indptr(cols[keep], len(latents))
    rows = part.indices[keep]
    active = sp.csc_matrix((np.ones(len(rows), np.float32), rows, indptr), shape=part.shape)
    positions = None
    if peaks is not None:
        at = peaks[:, latents].tocsc()
        at.sort_indices()
        positions = sp.csc_matrix((at.data[keep], rows, indptr), shape=part.shape)
    return active, positions


def _indptr(cols: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n))]).astype(np.int64)


def latent_similarity(
    a: sp.csr_matrix,
    b: sp.csr_matrix,
    latents: np.ndarray,
    tau: np.ndarray,
    peaks_a: sp.csr_matrix | None = None,
    peaks_b: sp.csr_matrix | None = None,
    *,
    chars: int = PEAK_CHARS,
    floor: float = 0.0,
) -> np.ndarray:
    """``sim`` (see the module docstring) between the given latents over A and B together;
    pairs whose plain Jaccard index is below ``floor`` are left at 0 (sim never exceeds it)."""
    latents = np.asarray(latents, dtype=np.int64)
    tau = np.asarray(tau, dtype=np.float64)
    use_peaks = peaks_a is not None and peaks_b is not None
    act_a, pos_a = _activity(a, latents, tau, peaks_a if use_peaks else None)
    act_b, pos_b = _activity(b, latents, tau, peaks_b if use_peaks else None)
    active = sp.vstack([act_a, act_b]).tocsc()
    both = (active.T @ active).toarray()
    sizes = np.diag(both)
    union = sizes[:, None] + sizes[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, both / union, 0.0)
    if not use_peaks:
        return jaccard
    positions = sp.vstack([pos_a, pos_b]).tocsc()
    positions.sort_indices()
    sim = np.zeros_like(jaccard)
    np.fill_diagonal(sim, 1.0)
    for i, j in zip(*np.nonzero(np.triu(jaccard >= max(floor, 1e-12), k=1)), strict=True):
        rows_i = positions.indices[positions.indptr[i] : positions.indptr[i + 1]]
        rows_j = positions.indices[positions.indptr[j] : positions.indptr[j + 1]]
        _, at_i, at_j = np.intersect1d(rows_i, rows_j, assume_unique=True, return_indices=True)
        start_i = positions.data[positions.indptr[i] : positions.indptr[i + 1]][at_i]
        start_j = positions.data[positions.indptr[j] : positions.indptr[j + 1]][at_j]
        together = int((np.abs(start_i - start_j) <= chars).sum())
        sim[i, j] = sim[j, i] = together / union[i, j]
    return sim


def cluster_similar(sim: np.ndarray, min_similarity: float) -> np.ndarray:
    """Group ids (0..g-1, in order of each group's first member) from average-linkage
    clustering of ``1 - sim`` cut at ``1 - min_similarity``."""
    n = sim.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = np.clip(1.0 - (sim + sim.T) / 2, 0.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    raw = fcluster(tree, t=1.0 - min_similarity, criterion="distance")
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(c), len(order)) for c in raw], dtype=np.int64)


def assign_groups(
    frame: pd.DataFrame,
    a: sp.csr_matrix,
    b: sp.csr_matrix,
    peaks_a: sp.csr_matrix | None = None,
    peaks_b: sp.csr_matrix | None = None,
    *,
    min_similarity: float = GROUP_SIMILARITY,
    chars: int = PEAK_CHARS,
    similarity=None,
) -> pd.DataFrame:
    """The per-latent diff ``frame`` with a ``group`` column: significant latents of one
    direction that say the same thing share a group; every other latent is a group of its own.
    Groups are numbered in the frame's order of their best member. ``similarity(latents, tau,
    floor)`` replaces :func:`latent_similarity` on ``a`` and ``b`` (a store read shard by shard
    gives it from counts: :func:`similarity_from_counts`)."""
    if similarity is None:

        def similarity(latents, tau, floor):
            return latent_similarity(a, b, latents, tau, peaks_a, peaks_b, chars=chars, floor=floor)

    group = -1 - np.arange(len(frame), dtype=np.int64)  # alone unless grouped below
    next_id = 0
    significant = frame["significant"].to_numpy()
    for direction in ("B>A", "A>B"):
        rows = np.nonzero(significant & (frame["direction"].to_numpy() == direction))[0]
        rows = rows[:MAX_GROUPED]
        if len(rows) == 0:
            continue
        latents = frame["latent"].to_numpy()[rows]
        tau = frame["threshold"].to_numpy()[rows]
        sim = similarity(latents, tau, min_similarity)
        local = cluster_similar(sim, min_similarity)
        group[rows] = local + next_id
        next_id += int(local.max()) + 1
    # renumbered 0, 1, ... in order of first appearance in the frame
    return frame.assign(group=pd.factorize(group)[0].astype(np.int64))


def grouped_rows(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per direction, the rows of ``frame`` that :func:`assign_groups` groups."""
    significant = frame["significant"].to_numpy()
    direction = frame["direction"].to_numpy()
    return {d: np.nonzero(significant & (direction == d))[0][:MAX_GROUPED] for d in ("B>A", "A>B")}


def similarity_from_counts(latents, sizes, both, together, floor: float) -> np.ndarray:
    """:func:`latent_similarity` of ``latents`` from counts over A and B together: ``sizes``
    (documents where each is active), ``both`` and ``together`` (symmetric: documents where two
    are active, and where their peaks also lie within the window), all aligned with
    ``latents``."""
    sizes = np.asarray(sizes, np.float32)
    both = np.asarray(both, np.float32)
    union = sizes[:, None] + sizes[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, both / union, 0.0)
    sim = np.zeros_like(jaccard)
    np.fill_diagonal(sim, 1.0)
    pairs = np.triu(jaccard >= max(floor, 1e-12), k=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sim[pairs] = np.asarray(together, np.float32)[pairs] / union[pairs]
    upper = np.triu(sim, k=1)
    return upper + upper.T + np.diag(np.diag(sim))


def union_active(matrix: sp.csr_matrix, latents, tau) -> np.ndarray:
    """Per document: is any of ``latents`` above its threshold ``tau`` (aligned)?"""
    active, _ = _activity(matrix, np.asarray(latents, dtype=np.int64), np.asarray(tau, float))
    return np.asarray(active.sum(axis=1)).ravel() > 0
