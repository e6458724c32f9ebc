"""The sparse document store: encode once, analyse many times."""

from .reader import Store, open_store
from .writer import encode_corpus

__all__ = ["Store", "encode_corpus", "open_store"]
