"""Readers turn texts into activation vectors: a causal LM at one layer, or a sentence embedder."""

from .base import Reader, TokenActivations
from .defaults import DEFAULT_LAYER, DEFAULT_READER, load_reader
from .embedding import EmbeddingReader
from .hf import HFReader

__all__ = [
    "DEFAULT_LAYER",
    "DEFAULT_READER",
    "EmbeddingReader",
    "HFReader",
    "Reader",
    "TokenActivations",
    "load_reader",
]
