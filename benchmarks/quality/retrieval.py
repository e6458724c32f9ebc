"""Retrieval: saetools search vs BM25 vs MiniLM cosine (vs LLM rerank with an endpoint).

Two kinds of queries, each scored by average precision (AP) and nDCG@10 over a full ranking:

- **planted properties**: each property of :data:`planted_diff.PROPERTIES` (but the topic one)
  planted into 5% of 600 news openings; the query is the property's description;
- **labelled properties**: the BBC topic of 500 openings (100 per topic); the query names the
  topic ("sports", ...).
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

import numpy as np
from sklearn.metrics import average_precision_score

from benchmarks.quality.planted_diff import PROPERTIES
from benchmarks.quality.search_apologies import bm25_scores, ndcg_at
from saetools.evaluation import TOPICS, bbc_documents, short_documents

TOPIC_QUERIES = {
    "business": "business and the economy",
    "entertainment": "films, music and entertainment",
    "politics": "politics and government",
    "sports": "sports",
    "tech": "technology",
}
METHODS = ("saetools", "BM25", "MiniLM cosine")


class RetrievalResult(NamedTuple):
    """(AP, nDCG@10) per query kind, query and method."""

    scores: dict[tuple[str, str], dict[str, tuple[float, float]]]
    seconds: float
    rerank: int


def rank_all(store, texts, query, minilm, doc_vectors, rerank: int = 0, llm=None) -> dict:
    """Scores of every document for ``query`` by each method."""
    import saetools

    frame = saetools.search(store.folder, query, top=len(texts), progress=False)
    sae = np.full(len(texts), -1.0)
    sae[frame["row"].to_numpy()] = frame["score"].to_numpy()
    out = {
        "saetools": sae,
        "BM25": bm25_scores(texts, query),
        "MiniLM cosine": doc_vectors @ minilm.embed([query])[0],
    }
    if rerank and llm is not None:
        ranked = saetools.search(
            store.folder, query, top=len(texts), rerank=rerank, llm=llm, progress=False
        )
        # the reranked order as scores (by position); documents search did not return last
        rr = np.full(len(texts), -float(len(texts) + 1))
        rr[ranked["row"].to_numpy()] = -np.arange(len(ranked), dtype=np.float64)
        out[f"saetools + LLM rerank {rerank}"] = rr
    return out


def evaluate(relevant: np.ndarray, scores: dict) -> dict[str, tuple[float, float]]:
    """AP and nDCG@10 of each method's scores."""
    return {
        m: (float(average_precision_score(relevant, s)), ndcg_at(relevant, s))
        for m, s in scores.items()
    }


def run_retrieval(
    n_planted_docs: int = 600, rate: float = 0.05, llm=None, rerank: int = 0, progress: bool = True
) -> RetrievalResult:
    """Every query of both kinds."""
    import saetools
    from saetools.readers.embedding import EmbeddingReader

    start = time.perf_counter()
    minilm = EmbeddingReader()
    results: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    texts, pool = short_documents(n_planted_docs, seed=31)
    n_plant = round(rate * len(texts))
    for prop, plant in PROPERTIES.items():
        if prop.startswith("topic"):
            continue
        rng = random.Random(7)
        chosen = set(rng.sample(range(len(texts)), n_plant))
        planted = [plant.apply(t, rng, pool, k) if k in chosen else t for k, t in enumerate(texts)]
        relevant = np.array([k in chosen for k in range(len(texts))], dtype=np.float64)
        store = saetools.encode(planted, progress=False)
        vectors = minilm.embed(planted)
        scores = rank_all(store, planted, plant.description, minilm, vectors, rerank, llm)
        results[("planted, 5%", f"{prop}: “{plant.description}”")] = evaluate(relevant, scores)
        if progress:
            print(f"[retrieval] {prop} ({time.perf_counter() - start:.0f} s)")
    docs = bbc_documents(100, 300, seed=32)
    texts = [t for _, t in docs]
    store = saetools.encode(texts, progress=False)
    vectors = minilm.embed(texts)
    for topic in TOPICS:
        relevant = np.array([t == topic for t, _ in docs], dtype=np.float64)
        query = TOPIC_QUERIES[topic]
        scores = rank_all(store, texts, query, minilm, vectors, rerank, llm)
        results[("labelled topic, 20%", f"{topic}: “{query}”")] = evaluate(relevant, scores)
    return RetrievalResult(results, time.perf_counter() - start, rerank if llm else 0)


def markdown(result: RetrievalResult) -> list[str]:
    """The retrieval section of docs/benchmarks.md."""
    methods = list(next(iter(result.scores.values())))
    lines = [
        f"## Retrieval ({result.seconds / 60:.1f} min)",
        "",
        "AP / nDCG@10 per query (full ranking of every document):",
        "",
        "| kind | query | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    means: dict[tuple[str, str], list[float]] = {}
    for (kind, query), row in result.scores.items():
        cells = " | ".join(f"{row[m][0]:.2f} / {row[m][1]:.2f}" for m in methods)
        lines.append(f"| {kind} | {query} | {cells} |")
        for m in methods:
            means.setdefault((kind, m), []).append(row[m][0])
    lines += ["", "| kind | " + " | ".join(f"{m} mean AP" for m in methods) + " |"]
    lines.append("|---|" + "---|" * len(methods))
    for kind in dict.fromkeys(k for k, _ in result.scores):
        cells = " | ".join(f"{np.mean(means[(kind, m)]):.2f}" for m in methods)
        lines.append(f"| {kind} | {cells} |")
    return lines + [""]
