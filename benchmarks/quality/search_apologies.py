"""Search quality on planted apologies: saetools search vs MiniLM cosine vs BM25.

    python -m benchmarks.quality --parts apologies [--quick]

Each sample is ``--docs`` BBC news openings (none apologising on its own) with an apology, in
one of six wordings, planted into 5% of them. Every method ranks all documents for each query;
the table gives average precision (AP) and nDCG@10, averaged over samples.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
from sklearn.metrics import average_precision_score

import saetools
from saetools.evaluation import planted_apologies

QUERIES = ["apology", "apologises to the user", "sorry", "the writer says sorry"]


def ndcg_at(relevant: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """nDCG@k with binary relevance."""
    order = np.argsort(-scores, kind="stable")[:k]
    gains = relevant[order] / np.log2(np.arange(2, len(order) + 2))
    ideal = 1 / np.log2(np.arange(2, min(k, int(relevant.sum())) + 2))
    return float(gains.sum() / ideal.sum()) if ideal.sum() else 0.0


def bm25_scores(texts: list[str], query: str, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of every text for a query (lower-cased word tokens)."""
    docs = [re.findall(r"\w+", t.lower()) for t in texts]
    lengths = np.array([len(d) for d in docs], dtype=np.float64)
    df = Counter(w for d in docs for w in set(d))
    n = len(docs)
    scores = np.zeros(n)
    for term in set(re.findall(r"\w+", query.lower())):
        idf = math.log(1 + (n - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))
        tf = np.array([d.count(term) for d in docs], dtype=np.float64)
        scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / lengths.mean()))
    return scores


def run_apologies(samples: int = 4, docs: int = 600) -> dict:
    """AP and nDCG@10 per (method, query), one pair per sample."""
    from saetools.readers.embedding import EmbeddingReader

    minilm = EmbeddingReader()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for sample in range(samples):
        records = planted_apologies(docs, docs // 20, seed=5 + sample)
        texts = [r["text"] for r in records]
        relevant = np.array([r["planted"] for r in records], dtype=np.float64)
        store = saetools.encode(texts, progress=False)
        doc_vectors = minilm.embed(texts)
        for query in QUERIES:
            frame = saetools.search(store.folder, query, top=len(texts), progress=False)
            sae = np.full(len(texts), -1.0)
            sae[frame["row"].to_numpy()] = frame["score"].to_numpy()
            cosine = doc_vectors @ minilm.embed([query])[0]
            for method, scores in (
                ("saetools", sae),
                ("MiniLM cosine", cosine),
                ("BM25", bm25_scores(texts, query)),
            ):
                ap = average_precision_score(relevant, scores)
                results.setdefault((method, query), []).append((ap, ndcg_at(relevant, scores)))
    return {"samples": samples, "docs": docs, "results": results}


def markdown(run: dict) -> list[str]:
    """The table: AP / nDCG@10 per query and method, and the mean AP."""
    results = run["results"]
    methods = ("saetools", "MiniLM cosine", "BM25")
    lines = [
        "## Search: planted apologies",
        "",
        f"{run['docs']} news openings, an apology (six wordings) planted into 5%, "
        f"{run['samples']} samples; AP / nDCG@10 averaged over samples.",
        "",
        "| query | " + " | ".join(f"{m} AP / nDCG@10" for m in methods) + " |",
        "|---|---|---|---|",
    ]
    means: dict[str, list[float]] = {}
    for query in QUERIES:
        cells = []
        for method in methods:
            ap, nd = np.mean(results[(method, query)], axis=0)
            means.setdefault(method, []).append(ap)
            cells.append(f"{ap:.2f} / {nd:.2f}")
        lines.append(f"| {query} | {' | '.join(cells)} |")
    lines.append("| mean AP | " + " | ".join(f"{np.mean(means[m]):.2f}" for m in methods) + " |")
    return lines + [""]
