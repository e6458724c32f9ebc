"""Planted-property cases: split a real corpus at random and plant a property into part of B.

Used by the tests (does a top-ranked latent fire on the planted documents?) and by the quality
benchmarks. A case is a list of texts for A, a list for B, and a mask of planted B documents.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np

APOLOGIES = [
    "I'm sorry for the confusion in my earlier answer.",
    "Apologies for any inconvenience this may have caused.",
    "My apologies, I made a mistake before.",
    "Sorry about that error, it was my fault.",
    "I apologize for the misunderstanding.",
    "Please forgive the oversight on my part.",
]
ENTHUSIASM = [
    "Wow, this is absolutely fantastic news!",
    "I'm thrilled to share this with you!",
    "What an amazing story, I love it!",
    "This is so exciting, great stuff!",
    "Brilliant, I'm delighted about this!",
    "Fantastic! Really wonderful to see.",
]
FIXED_PHRASE = "I hope it is correct."

PLANTS = {
    "phrase": lambda text, rng: f"{text}\n\n{FIXED_PHRASE}",
    "apology": lambda text, rng: f"{rng.choice(APOLOGIES)} {text}",
}


class PlantedCase(NamedTuple):
    """Texts of A and B and which B documents carry the planted property."""

    a: list[str]
    b: list[str]
    planted: np.ndarray  # bool [len(b)]
    b_rows: np.ndarray  # index of each B document in the source corpus
    a_rows: np.ndarray  # index of each A document in the source corpus


def planted_split(texts: list[str], plant: str, rate: float, seed: int = 0) -> PlantedCase:
    """Random half/half split of ``texts``; plant into ``rate`` of B (at least one document)."""
    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    half = len(order) // 2
    a_rows, b_rows = order[:half], order[half:]
    n_plant = max(1, round(rate * len(b_rows))) if rate > 0 else 0
    planted = np.zeros(len(b_rows), dtype=bool)
    planted[rng.sample(range(len(b_rows)), n_plant)] = True
    b = [PLANTS[plant](texts[r], rng) if planted[i] else texts[r] for i, r in enumerate(b_rows)]
    return PlantedCase([texts[r] for r in a_rows], b, planted, np.array(b_rows), np.array(a_rows))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (ties count half)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_top_auroc(
    ranked_latents, b_matrix, planted: np.ndarray, top: int = 5
) -> tuple[float, int]:
    """Best AUROC (planted vs other B documents) among the first ``top`` B>A latents, and the
    rank (1-based) of the first latent reaching 0.9 (0 if none in the top)."""
    best, first = 0.0, 0
    dense_cols = b_matrix[:, list(ranked_latents[:top])].toarray()
    for rank in range(min(top, len(ranked_latents))):
        score = auroc(dense_cols[:, rank], planted)
        best = max(best, score)
        if score >= 0.9 and first == 0:
            first = rank + 1
    return best, first
