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
    count_x = np.diff(x.tocsc().indptr)
    count_y = count_x if y is None else np.diff(y.tocsc().indptr)
    return rank_pairs(
        iter_count_blocks(x, y, block),
        count_x,
        count_y,
        x.shape[0],
        min_support=min_support,
        keep=keep,
        score=score,
        reject=reject,
    )


def rank_pairs(
    blocks,
    count_x: np.ndarray,
    count_y: np.ndarray,
    n: int,
    *,
    min_support: int = 5,
    keep: int = 1000,
    score: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray] = npmi,
    reject: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`top_pairs` from count blocks ``(lo, counts)`` (rows ``lo:`` of the pair-count
    matrix) and each column's count over ``n`` rows."""
    best = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)]
    for lo, counts in blocks:
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


def _pair_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def pair_counts(indptr, indices, starts, lo, hi, window, joint, near):
        for doc in range(len(indptr) - 1):
            end = indptr[doc + 1]
            for p in range(indptr[doc], end):
                i = indices[p]
                if i < lo or i >= hi:
                    continue
                for q in range(p + 1, end):
                    j = indices[q]
                    joint[i - lo, j] += 1
                    if window >= 0 and abs(starts[p] - starts[q]) <= window:
                        near[i - lo, j] += 1

    return pair_counts


_PAIR_COUNTS = None

PAIR_COUNT_BYTES = 1 << 30
"""Memory for the pair counts of a sharded count: rows of latents per pass over the store."""


def sharded_pair_counts(
    blocks_of, n_cols: int, window: int | None, budget: int = PAIR_COUNT_BYTES, threads=None
):
    """Yield ``(lo, joint, near)`` for row blocks of the pair-count matrix of binary data read
    in pieces: ``blocks_of()`` gives a fresh iterator of ``(csr, starts)`` pieces (0/1 CSR with
    ascending column ids per row; ``starts`` the peak offset of each entry). ``joint[i - lo, j]``
    counts the rows where i < j are both non-zero; ``near`` those of them whose peaks lie within
    ``window`` characters (all zero when ``window`` is None). Each block of rows takes one pass
    over the pieces, in ``budget`` bytes per thread; ``threads`` (default: the CPUs, at most 4)
    count pieces side by side into their own arrays, summed at the end."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    global _PAIR_COUNTS
    if _PAIR_COUNTS is None:
        _PAIR_COUNTS = _pair_kernel()
    threads = threads or min(4, os.cpu_count() or 1)
    per_row = n_cols * 4 * (2 if window is not None else 1)
    step = max(1, min(n_cols, budget // per_row))
    for lo in range(0, n_cols, step):
        hi = min(n_cols, lo + step)
        shape = (hi - lo, n_cols)
        joint = [np.zeros(shape, np.int32) for _ in range(threads)]
        near = [np.zeros(shape if window is not None else (1, 1), np.int32) for _ in joint]

        def count(piece, starts, k, lo=lo, hi=hi, joint=joint, near=near):
            _PAIR_COUNTS(
                piece.indptr.astype(np.int64),
                piece.indices.astype(np.int64),
                np.asarray(starts, np.int64),
                lo,
                hi,
                -1 if window is None else int(window),
                joint[k],
                near[k],
            )

        with ThreadPoolExecutor(threads) as pool:
            running = []
            for number, (piece, starts) in enumerate(blocks_of()):
                if len(running) == threads:  # one piece per thread in flight
                    running.pop(0).result()
                running.append(pool.submit(count, piece, starts, number % threads))
            for job in running:
                job.result()
        yield lo, sum(joint[1:], joint[0]), sum(near[1:], near[0])
