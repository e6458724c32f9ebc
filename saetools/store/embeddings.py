"""The dense document embeddings of a store made with a document-embedding reader.

Steered search compares a query embedding with each document's embedding (cosine similarity),
so it needs the vectors the SAE was applied to, not their sparse codes. They are computed once
with the store's own reader and kept beside the store in ``embeddings.safetensors`` (float16,
unit-norm rows; no pickle), keyed by a hash of the documents' ids and texts so that a stale file
is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import SaetoolsError

EMBEDDINGS_FILE = "embeddings.safetensors"


def docs_key(store) -> str:
    """Hash of a store's (or view's) document ids and texts, in row order."""
    from .docs_table import hash_documents

    docs = store.docs
    return hash_documents(zip(docs["id"].astype(str), docs["text"].astype(str), strict=True))


def require_embedding_store(store) -> None:
    """Refuse a store whose reader does not make one vector per document: steering decodes into
    the space documents are compared in, which token-level stores do not have."""
    kind = store.reader_spec.get("kind")
    if not store.document_level:
        raise SaetoolsError(
            f"{store.folder}: steered search needs a store made with a document-embedding reader "
            f"(--reader minilm or a sentence-transformers model); this one was read by a "
            f"{kind or 'unknown'} reader, whose SAE decodes token activations, not document "
            "embeddings"
        )


def _read_cached(path: Path, key: str, n_docs: int, d_model: int) -> np.ndarray | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            if meta.get("docs_key") != key:
                return None
            vectors = handle.get_tensor("embeddings")
    except (OSError, SafetensorError, KeyError):
        return None
    if vectors.shape != (n_docs, d_model):
        return None
    return vectors.astype(np.float32)


def document_embeddings(store, reader, *, progress: bool = False) -> np.ndarray:
    """Unit-norm embeddings ``[n_docs, d_model]`` (float32) of a store's documents, from the
    cache file when it matches the documents, else embedded with ``reader`` and cached (when the
    store folder is writable)."""
    from ..tensorfile import save_tensors

    require_embedding_store(store)
    key = docs_key(store)
    path = Path(store.folder) / EMBEDDINGS_FILE
    cached = _read_cached(path, key, len(store), reader.d_model) if path.exists() else None
    if cached is not None:
        return cached
    vectors = reader.embed(store.docs["text"].astype(str).tolist(), progress=progress)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # rounded to float16 as stored, so a first run and a cached run rank alike
    vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float16)
    if os.access(store.folder, os.W_OK):
        save_tensors(
            path,
            {"embeddings": vectors},
            {"docs_key": key, "reader": str(reader.describe().get("name"))},
        )
    return vectors.astype(np.float32)
