"""Shared fixtures: the embedded default reader (loaded once per session) and small corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CORPUS = ROOT / "examples" / "corpus.jsonl"


@pytest.fixture(scope="session")
def reader_fp32():
    """SmolLM2-135M (embedded default), fp32, no outlier filtering: for exactness tests."""
    from saetools.readers import load_reader

    return load_reader(None, 5, dtype="float32", outlier_ratio=None, quiet=True)


@pytest.fixture(scope="session")
def reader_bf16():
    """SmolLM2-135M (embedded default) as users get it: layer 15, the dtype the hardware runs
    natively (bf16 or fp32)."""
    from saetools.readers import load_reader

    return load_reader(quiet=True)


@pytest.fixture(scope="session")
def example_texts() -> list[str]:
    """Texts of the shipped example corpus."""
    with open(EXAMPLE_CORPUS) as fh:
        return [json.loads(line)["text"] for line in fh]


@pytest.fixture(scope="session")
def example_sae(tmp_path_factory, reader_bf16, example_texts):
    """A small TopK SAE trained on the first 300 documents of the example corpus (~40k tokens)
    with the default reader (~30 s on 2 cores; the tests that use it read documents among
    those)."""
    from saetools.api import train_sae

    folder = tmp_path_factory.mktemp("example_sae")
    train_sae(
        example_texts[:300],
        folder,
        reader=reader_bf16,
        latents=1024,
        k=32,
        epochs=3,
        batch_size=2048,
        progress=False,
    )
    return folder
