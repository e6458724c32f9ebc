"""diff speed and memory on a synthetic store: 1M documents x 16k latents, ~64 active each.

    python -m benchmarks.speed --only diff [--docs 1000000] [--latents 16384] [--active 64]

Prints the time of ``diff_matrices`` once the matrices are in memory (target < 2 s) and the peak
extra memory it allocates relative to the matrices' own size (O(nnz)).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from saetools.analyses.diff import diff_matrices


def synthetic_store(docs: int, latents: int, active: int, seed: int) -> sp.csr_matrix:
    """Random CSR rows with ``active`` distinct latents each (Zipf-like popularity)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, latents + 1) ** 0.7
    popularity /= popularity.sum()
    indices = rng.choice(latents, size=(docs, active), p=popularity).astype(np.int32)
    indices.sort(axis=1)
    values = rng.exponential(1.0, size=docs * active).astype(np.float32)
    indptr = np.arange(0, docs * active + 1, active, dtype=np.int64)
    matrix = sp.csr_matrix((values, indices.reshape(-1), indptr), shape=(docs, latents))
    matrix.sum_duplicates()
    return matrix


def main() -> None:
    """Build two halves and time the diff."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--latents", type=int, default=16384)
    parser.add_argument("--active", type=int, default=64)
    args = parser.parse_args()
    half = args.docs // 2
    a = synthetic_store(half, args.latents, args.active, 0)
    b = synthetic_store(args.docs - half, args.latents, args.active, 1)
    size = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (a, b))
    diff_matrices(a[:1000], b[:1000])  # warm-up
    for test in ("frequency", "welch"):
        tracemalloc.start()
        start = time.perf_counter()
        frame = diff_matrices(a, b, test=test)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"diff ({test}) of {args.docs:,} documents x {args.latents:,} latents, "
            f"nnz {a.nnz + b.nnz:,}: {elapsed:.2f} s (target < 2 s); peak extra memory "
            f"{peak / 2**20:,.0f} MiB = {peak / size:.2f} x the matrices ({size / 2**20:,.0f} "
            f"MiB); {int(frame['significant'].sum())} significant"
        )


if __name__ == "__main__":
    main()
