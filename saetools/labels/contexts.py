"""Context vectors: what the text around a latent's strongest firings is about, as one embedding.

A latent's label names where it fires (a peak-token label such as ``"!"``); the sentences around
those firings say what it is used for (enthusiastic openings). The context vector of a latent is
the unit-normalised mean of the sentence embeddings of the text before and around its top
example windows in a labelling store. Query matching (:class:`~saetools.labels.similarity.
LabelIndex`) mixes it with the label's own embedding, so ``--query enthusiasm`` can reach a
latent labelled ``"!"``. A pack ships them as ``latent-contexts.safetensors``; for any other SAE,
``saetools labels contexts`` writes them beside this machine's labels for it
(``$SAETOOLS_HOME/labels/<fingerprint>/``), which win over the pack's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONTEXTS_FILE = "latent-contexts.safetensors"
CONTEXT_EXAMPLES = 10
"""Top example windows per latent that are embedded."""
CONTEXT_BEFORE = 120
"""Characters of text before a firing's peak that go into its context (the peak token is
usually the end of what it responds to)."""
CONTEXT_AFTER = 40
"""Characters after the peak."""


def context_snippets(store, top: int = CONTEXT_EXAMPLES) -> tuple[np.ndarray, list[str]]:
    """``(latents, texts)``: for each of a store's top ``top`` examples per latent, the latent
    and the whitespace-normalised text from ``CONTEXT_BEFORE`` characters before its peak to
    ``CONTEXT_AFTER`` after it."""
    texts = store.docs["text"].to_numpy()
    examples = store.examples[store.examples["rank"] < top]
    snippets = []
    for row, start, end in examples[["row", "start", "end"]].itertuples(index=False):
        text = texts[row]
        window = text[max(0, int(start) - CONTEXT_BEFORE) : int(end) + CONTEXT_AFTER]
        snippets.append(" ".join(window.split()))
    return examples["latent"].to_numpy(dtype=np.int64), snippets


def context_vectors(
    store, embedder=None, top: int = CONTEXT_EXAMPLES, progress: bool = False
) -> np.ndarray:
    """``[d_sae, dim]`` float32 context vectors of a store's latents (zero rows for latents
    without examples); ``embedder``: any object with ``embed(texts) -> ndarray`` (default: the
    shipped MiniLM)."""
    from .similarity import default_embedder

    embedder = embedder or default_embedder()
    latents, snippets = context_snippets(store, top)
    # latents that peak on the same token share a snippet: each distinct text is embedded once
    # (41% of the snippets of the 693 example docstrings, 84% of those of their first 40)
    unique, where = np.unique(np.asarray(snippets, dtype=object), return_inverse=True)
    vectors = (
        embedder.embed(list(unique), progress=progress)[where] if snippets else np.zeros((0, 1))
    )
    out = np.zeros((store.d_sae, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, latents, vectors.astype(np.float32))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def save_context_vectors(folder: str | Path, vectors: np.ndarray, model: str) -> Path:
    """Write context vectors (float16) beside an SAE as ``latent-contexts.safetensors``."""
    from ..tensorfile import save_tensors

    path = Path(folder) / CONTEXTS_FILE
    metadata = {"model": model, "examples": str(CONTEXT_EXAMPLES)}
    save_tensors(path, {"vectors": vectors.astype(np.float16)}, metadata)
    return path


def user_contexts_path(sae_folder=None, *, fingerprint: str | None = None) -> Path:
    """Where context vectors made on this machine for an SAE go: beside its user labels
    (:func:`saetools.labels.user_labels_path`), filed under the SAE's weight fingerprint."""
    from . import user_labels_path

    return user_labels_path(sae_folder, fingerprint=fingerprint).with_name(CONTEXTS_FILE)


def context_files(sae_folder, fingerprint: str | None) -> list[Path]:
    """The context-vector files that may hold an SAE's vectors, first wins: this machine's
    (needs the fingerprint), then the one beside the SAE."""
    files = []
    if fingerprint is not None:
        files.append(user_contexts_path(fingerprint=fingerprint))
    if sae_folder is not None:
        files.append(Path(sae_folder) / CONTEXTS_FILE)
    return files


def find_context_vectors(
    sae_folder, fingerprint: str | None, model: str, d_sae: int
) -> np.ndarray | None:
    """An SAE's context vectors from the first of :func:`context_files` that holds usable
    ones (made with ``model``, ``d_sae`` rows), or None."""
    for path in context_files(sae_folder, fingerprint):
        vectors = load_context_vectors(path.parent, model, d_sae)
        if vectors is not None:
            return vectors
    return None


def write_store_contexts(store, *, embedder=None, progress: bool = False) -> Path:
    """Compute the context vectors of a store's SAE from its top examples and file them under
    the SAE's fingerprint on this machine (atomically); returns the file written."""
    from .similarity import DEFAULT_LABEL_MODEL

    vectors = context_vectors(store, embedder, progress=progress)
    path = user_contexts_path(fingerprint=store.sae_fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = getattr(embedder, "name", None) or DEFAULT_LABEL_MODEL
    return save_context_vectors(path.parent, vectors, model)


def load_context_vectors(folder: str | Path | None, model: str, d_sae: int) -> np.ndarray | None:
    """The context vectors shipped beside an SAE (float32), or None where there are none, they
    were made with another embedding model, or their row count is not the SAE's width."""
    from safetensors import SafetensorError, safe_open

    if folder is None or not (Path(folder) / CONTEXTS_FILE).is_file():
        return None
    path = Path(folder) / CONTEXTS_FILE
    try:
        with safe_open(str(path), "np") as fh:
            if (fh.metadata() or {}).get("model") != model:
                return None
            vectors = fh.get_tensor("vectors").astype(np.float32)
    except (OSError, SafetensorError) as error:
        from ..errors import SaetoolsError

        raise SaetoolsError(f"{path}: not a readable context-vector file ({error})") from error
    return vectors if vectors.ndim == 2 and len(vectors) == d_sae else None
