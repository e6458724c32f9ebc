"""Sparse co-occurrence counts XᵀY in blocks of rows, with a compiled kernel.

Never holds a dense latents × latents matrix: rows of the count matrix are produced in blocks of
``block`` latents (``block × n_cols`` int32), handed to a callback, and dropped. The work is the
number of co-occurring pairs, Σ_docs nnz_x(doc) · nnz_y(doc) (half that for XᵀX).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp


def _kernel():
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def block_counts(col_ptr, col_docs, col_start, row_ptr, row_idx, lo, hi, n_cols):
        out = np.zeros((hi - lo, n_cols), np.int32)
        for b in numba.prange(hi - lo):
            acc = out[b]
            for e in range(col_ptr[lo + b], col_ptr[lo + b + 1]):
                doc = col_docs[e]
                for q in range(col_start[e], row_ptr[doc + 1]):
                    acc[row_idx[q]] += 1
        return out

    return block_counts


_BLOCK_COUNTS = None


def iter_count_blocks(
    x: sp.csr_matrix, y: sp.csr_matrix | None = None, block: int = 1024
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(lo, counts)`` with ``counts[i - lo, j]`` = number of rows where column i of
    binary ``x`` and column j of ``y`` are both non-zero. Without ``y``, ``y = x`` and only
    pairs ``j > i`` are counted (the rest of each row is 0)."""
    global _BLOCK_COUNTS
    if _BLOCK_COUNTS is None:
        _BLOCK_COUNTS = _kernel()
    x = x.tocsr()
    x.sort_indices()
    # CSC view of x whose entries remember their position in the CSR arrays
    position = np.arange(x.nnz, dtype=np.float64)
    csc = sp.csr_matrix((position, x.indices, x.indptr), shape=x.shape).tocsc()
    csc.sort_indices()
    col_ptr = csc.indptr.astype(np.int64)
    col_docs = csc.indices.astype(np.int64)
    if y is None:
        col_start = csc.data.astype(np.int64) + 1
        row_ptr, row_idx, n_cols = x.indptr.astype(np.int64), x.indices.astype(np.int64), x.shape[1]
    else:
        y = y.tocsr()
        row_ptr, row_idx, n_cols = y.indptr.astype(np.int64), y.indices.astype(np.int64), y.shape[1]
        col_start = row_ptr[col_docs]
    for lo in range(0, x.shape[1], block):
        hi = min(x.shape[1], lo + block)
        yield lo, _BLOCK_COUNTS(col_ptr, col_docs, col_start, row_ptr, row_idx, lo, hi, n_cols)


def npmi(joint: np.ndarray, count_i: np.ndarray, count_j: np.ndarray, n: int) -> np.ndarray:
    """NPMI = log(p(i,j) / (p(i) p(j))) / −log p(i,j); −1 where the pair never co-occurs and 0
    where both occur in every row (independent by definition)."""
    joint = np.asarray(joint, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_ij = joint / n
        pmi = (
            np.log(p_ij)
            - np.log(np.asarray(count_i, np.float64) / n)
            - np.log(np.asarray(count_j, np.float64) / n)
        )
        out = pmi / -np.log(p_ij)
    out = np.where(joint <= 0, -1.0, out)
    return np.where(joint >= n, 0.0, out)


def top_pairs(
    x: sp.csr_matrix,
    y: sp.csr_matrix | None = None,
    *,
    min_support: int = 5,
    keep: int = 1000,
    score: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray] = npmi,
    reject: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``keep`` pairs (i, j) with the highest NPMI among those co-occurring in at least
    ``min_support`` rows and not rejected by ``reject(i, j) -> bool mask``; returns
    ``(i, j, joint_count, npmi)`` best first."""
    n = x.shape[0]
    count_x = np.diff(x.tocsc().indptr)
    count_y = count_x if y is None else np.diff(y.tocsc().indptr)
    best = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)]
    for lo, counts in iter_count_blocks(x, y, block):
        rows, cols = np.nonzero(counts >= min_support)
        if not len(rows):
            continue
        joint = counts[rows, cols].astype(np.int64)
        i = (rows + lo).astype(np.int64)
        s = score(joint, count_x[i], count_y[cols], n)
        floor = best[3][keep - 1] if len(best[3]) >= keep else -np.inf
        order = np.argsort(-s, kind="stable")
        order = order[s[order] > floor]
        accepted: list[np.ndarray] = []
        n_accepted = 0
        for start in range(0, len(order), keep):  # walk down until `keep` pairs survive
            chunk = order[start : start + keep]
            if reject is not None:
                chunk = chunk[~reject(i[chunk], cols[chunk].astype(np.int64))]
            accepted.append(chunk)
            n_accepted += len(chunk)
            if n_accepted >= keep:
                break
        pick = np.concatenate(accepted) if accepted else np.zeros(0, np.int64)
        merged = [
            np.concatenate([best[0], i[pick]]),
            np.concatenate([best[1], cols[pick].astype(np.int64)]),
            np.concatenate([best[2], joint[pick]]),
            np.concatenate([best[3], s[pick]]),
        ]
        order = np.lexsort((merged[1], merged[0], -merged[2], -merged[3]))[:keep]
        best = [m[order] for m in merged]
    return best[0], best[1], best[2], best[3]
