"""Speed of correlate, search and cluster on synthetic stores (issue targets in brackets).

    python -m benchmarks.speed --only analyses [--docs 1000000] [--latents 16384] [--active 64]
                                        [--cluster-docs 50000]

* NPMI top pairs over 1M documents x 16k latents, ~64 active each   [< 60 s]
* search: label match (MiniLM on the query) + scoring, per query     [< 50 ms]
* targeted clustering of 50k documents on 20 latents                  [< 60 s]

The synthetic rows use the same Zipf-like latent popularity as the diff benchmark; for search, the
shipped SAE's 4,608 labels stand for the first 4,608 of the synthetic latents. A naive baseline
is timed in the same run for each: a dense co-occurrence product over a 20k-document slice
(extrapolated), a dense matrix-vector score, and scikit-learn spectral clustering on the dense
affinity of a 5k-document slice (extrapolated by n^2).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from benchmarks.speed.diff import synthetic_store
from saetools.analyses.cluster import cluster_matrix
from saetools.analyses.cooccurrence import top_pairs
from saetools.analyses.search import Searcher
from saetools.store.activity import binarize


def bench_correlate(matrix: sp.csr_matrix) -> None:
    """Time NPMI top pairs on the full matrix and a dense-product baseline on a slice."""
    start = time.perf_counter()
    active = binarize(matrix, rho=0.0)  # every stored entry active: ~64 per document
    i, j, joint, score = top_pairs(active, min_support=50, keep=100)
    elapsed = time.perf_counter() - start
    n = 20_000
    dense = active[:n].toarray()
    t0 = time.perf_counter()
    _ = dense.T @ dense
    naive = (time.perf_counter() - t0) * matrix.shape[0] / n
    print(
        f"correlate: NPMI top pairs over {matrix.shape[0]:,} x {matrix.shape[1]:,} "
        f"(nnz {active.nnz:,} after binarising): {elapsed:.1f} s (target < 60 s); dense "
        f"co-occurrence product, extrapolated: {naive:.0f} s ({naive / elapsed:.0f}x slower, "
        f"and a {matrix.shape[1] ** 2 * 4 / 2**30:.1f} GiB matrix); best NPMI {score[0]:.3f}"
    )


def bench_search(matrix: sp.csr_matrix, queries: list[str]) -> None:
    """Per-query latency: label match + scoring + top 10, against a dense scan."""
    from saetools.labels.similarity import label_index_for
    from saetools.sae.packs import default_sae_path

    index = label_index_for(default_sae_path())
    start = time.perf_counter()
    searcher = Searcher(matrix)
    build = time.perf_counter() - start
    index.match("warm up", top=10)
    times = []
    for query in queries:
        t0 = time.perf_counter()
        match = index.match(query, top=10)
        weights = match["similarity"].to_numpy() ** 4
        searcher.top(match["latent"].to_numpy(), weights, 10)
        times.append(time.perf_counter() - t0)
    latents = match["latent"].to_numpy()
    t0 = time.perf_counter()
    columns = matrix[:, latents].toarray()  # the naive way: slice the CSR matrix each query
    naive_scores = columns @ weights
    np.argsort(-naive_scores)[:10]
    naive = time.perf_counter() - t0
    per_query = float(np.median(times))
    print(
        f"search: {len(queries)} queries over {matrix.shape[0]:,} documents: median "
        f"{per_query * 1000:.1f} ms per query (target < 50 ms; index built once in "
        f"{build:.1f} s); naive CSR column slice + sort: {naive * 1000:.0f} ms "
        f"({naive / per_query:.0f}x slower)"
    )


def structured_store(docs: int, latents: int, active: int, seed: int):
    """Synthetic rows plus two planted groups on 10 extra latents (the 'tone' to target), which
    are appended as the last 10 columns."""
    matrix = synthetic_store(docs, latents - 10, active, seed)
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, docs)
    planted = np.zeros((docs, 10), np.float32)
    for k in range(10):
        planted[(group == k // 5) & (rng.random(docs) < 0.7), k] = 3.0
    return sp.hstack([matrix, sp.csr_matrix(planted)]).tocsr(), group


def naive_spectral(matrix: sp.csr_matrix, chosen: np.ndarray) -> np.ndarray:
    """scikit-learn spectral clustering on the dense document x document Jaccard affinity."""
    import warnings

    from sklearn.cluster import SpectralClustering

    from saetools.analyses.cluster import jaccard_affinity

    active = binarize(matrix)[:, chosen]
    keep = np.diff(active.tocsr().indptr) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SpectralClustering(2, affinity="precomputed", random_state=0)
        return model.fit_predict(jaccard_affinity(active[keep], dense_limit=10**9))


def bench_cluster(docs: int, latents: int, active: int) -> None:
    """Targeted clustering of ``docs`` documents (kNN graph) and a dense-affinity baseline."""
    from sklearn.metrics import adjusted_rand_score

    matrix, group = structured_store(docs, latents, active, 3)
    chosen = np.arange(latents - 20, latents)  # the 10 planted latents and 10 ordinary ones
    start = time.perf_counter()
    result = cluster_matrix(matrix, 2, latents=chosen, dense_limit=0)
    elapsed = time.perf_counter() - start
    n = 5000
    t0 = time.perf_counter()
    naive_spectral(matrix[:n], chosen)
    naive = (time.perf_counter() - t0) * (docs / n) ** 2
    print(
        f"cluster: {docs:,} documents on {len(chosen)} latents, kNN graph: {elapsed:.1f} s "
        f"(target < 60 s), ARI with the planted groups "
        f"{adjusted_rand_score(group, result.labels):.2f}; dense affinity extrapolated by n^2: "
        f"{naive:.0f} s and {docs**2 * 8 / 2**30:.0f} GiB"
    )


def main() -> None:
    """Run the three benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--latents", type=int, default=16384)
    parser.add_argument("--active", type=int, default=64)
    parser.add_argument("--cluster-docs", type=int, default=50_000)
    args = parser.parse_args()
    matrix = synthetic_store(args.docs, args.latents, args.active, 0)
    bench_correlate(matrix)
    queries = ["apologises to the user", "sports", "mathematics", "tone", "a recipe", "anger"]
    bench_search(matrix, queries)
    bench_cluster(args.cluster_docs, args.latents, args.active)


if __name__ == "__main__":
    main()
