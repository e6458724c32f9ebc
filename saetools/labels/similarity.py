"""Label embeddings: match a natural-language query to latents, and compare two latents' labels.

Labels are embedded with a sentence-embedding model (the shipped all-MiniLM-L6-v2 by default),
unit-normalised, so similarities are cosines. Embeddings are cached under
``$SAETOOLS_HOME/label-embeddings`` keyed by the labels' text and the model, so a label set is
embedded once per machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SaetoolsError
from ..paths import saetools_home

DEFAULT_LABEL_MODEL = "all-MiniLM-L6-v2"
"""The sentence-embedding model labels, queries and contexts are embedded with by default."""


def _texts_key(latents, texts, model_name: str) -> str:
    digest = hashlib.sha256(model_name.encode())
    for latent, text in zip(latents, texts, strict=True):
        digest.update(f"{latent}\t{text}\n".encode())
    return digest.hexdigest()[:20]


class LabelIndex:
    """Unit-normalised embeddings of a label set, for query matching and label similarity.

    ``labels`` maps latent id -> label (what is shown); ``match_texts`` maps latent id -> the
    texts a query is matched against instead (default: the label alone; see
    :func:`saetools.labels.match_texts`): a latent is as similar to a query as the closest of
    its texts. ``contexts``, a ``[d_sae, dim]`` array of unit context vectors
    (:mod:`saetools.labels.contexts`), is mixed into every matched text's vector with weight
    :data:`CONTEXT_WEIGHT`; ``embedder`` is any object with ``embed(texts) -> ndarray``
    returning unit vectors (default: an :class:`saetools.readers.EmbeddingReader` on the
    shipped MiniLM).
    """

    def __init__(
        self,
        labels: dict[int, str],
        embedder=None,
        *,
        match_texts: dict[int, Sequence[str]] | None = None,
        contexts: np.ndarray | None = None,
        progress: bool = False,
        shipped: str | Path | None = None,
    ) -> None:
        if not labels:
            raise SaetoolsError(
                "this SAE has no labels (labels.jsonl); label one with `saetools label` or use an "
                "SAE that ships labels"
            )
        self.latents = np.array(sorted(labels), dtype=np.int64)
        self.labels = [labels[int(j)] for j in self.latents]
        match_texts = match_texts or {}
        per_latent = [
            list(match_texts.get(int(j)) or [labels[int(j)]]) for j in self.latents.tolist()
        ]
        # every embedded text, latent by latent; ``owner`` maps each to its latent's row
        self.texts = [text for texts in per_latent for text in texts]
        self.owner = np.repeat(np.arange(len(per_latent)), [len(t) for t in per_latent])
        self._embedder = embedder
        self.model_name = getattr(embedder, "name", None) or DEFAULT_LABEL_MODEL
        # identifies the embedded texts and model: the name of its cached / shipped embeddings
        self.key = _texts_key(self.latents[self.owner].tolist(), self.texts, self.model_name)
        self.text_vectors = self._load_or_embed(progress, shipped)
        # where each latent's texts start (texts are grouped latent by latent)
        self._first = np.searchsorted(self.owner, np.arange(len(per_latent)))
        self.vectors = self.text_vectors[self._first]  # each latent's first text: its label
        self.match_vectors = mix_contexts(self.text_vectors, contexts, self.latents[self.owner])
        self._row = {int(j): r for r, j in enumerate(self.latents)}

    @property
    def embedder(self):
        """The sentence-embedding model (loaded on first use)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def _load_or_embed(self, progress: bool, shipped: str | Path | None) -> np.ndarray:
        from safetensors.numpy import load_file

        name, key = self.model_name, self.key
        cache = saetools_home() / "label-embeddings" / f"{key}.safetensors"
        folders = [cache.parent] + ([Path(shipped)] if shipped is not None else [])
        exact = [cache] + ([shipped_vectors_path(shipped, key)] if shipped else [])
        for path in exact:
            if path.exists():
                return load_file(str(path))["vectors"].astype(np.float32)
        # a label set that differs from a known one in a few labels (LLM labels added to the
        # shipped keyword labels): reuse the vectors of every label text already embedded
        known = _known_vectors(folders, name)
        missing = sorted({t for t in self.texts if t not in known})
        if missing:
            fresh = self.embedder.embed(missing, progress=progress and len(missing) > 256)
            known.update(zip(missing, fresh.astype(np.float32), strict=True))
        vectors = np.stack([known[t] for t in self.texts]).astype(np.float32)
        save_label_vectors(cache, self.texts, vectors, name)
        return vectors

    def embed_query(self, query: str) -> np.ndarray:
        """Unit vector of a query text."""
        return self.embedder.embed([query])[0].astype(np.float32)

    def match(
        self, query: str, top: int | None = 20, threshold: float | None = None
    ) -> pd.DataFrame:
        """Latents whose match texts (labels, and their keywords where a pack ships them; mixed
        with their context vectors where it ships those) are most similar to ``query``:
        ``latent``, ``label`` (as shown), ``similarity`` (cosine), best first; the ``top`` best,
        or all above ``threshold``."""
        sims = np.maximum.reduceat(self.match_vectors @ self.embed_query(query), self._first)
        order = np.argsort(-sims, kind="stable")
        if threshold is not None:
            order = order[sims[order] >= threshold]
        if top is not None:
            order = order[:top]
        return pd.DataFrame(
            {
                "latent": self.latents[order],
                "label": [self.labels[r] for r in order],
                "similarity": sims[order].astype(np.float64),
            }
        )

    def pair_similarity(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Cosine similarity of the labels of latents ``left[i]`` and ``right[i]`` (each
        latent's first match text, which :func:`saetools.labels.match_texts` makes its label;
        NaN where a latent has no label). Context vectors and keywords are left out: latents
        that fire together share contexts by construction, whatever their labels say."""
        out = np.full(len(left), np.nan)
        rows_l = np.array([self._row.get(int(j), -1) for j in left], dtype=np.int64)
        rows_r = np.array([self._row.get(int(j), -1) for j in right], dtype=np.int64)
        ok = (rows_l >= 0) & (rows_r >= 0)
        out[ok] = np.einsum("ij,ij->i", self.vectors[rows_l[ok]], self.vectors[rows_r[ok]])
        return out


CONTEXT_WEIGHT = 0.3
"""Weight of a latent's context vector against its label's embedding in query matching
(docs/design.md: tone clustering over five query pairs was best and flattest at 0.25-0.35)."""


def mix_contexts(vectors: np.ndarray, contexts: np.ndarray | None, latents: np.ndarray):
    """Unit rows of ``(1 - w) * text + w * context`` (``w`` = :data:`CONTEXT_WEIGHT`; row ``i``
    of ``vectors`` is a text of latent ``latents[i]``) where that latent has a context vector;
    the text's vector where it has none or ``contexts`` is None."""
    if contexts is None:
        return vectors
    if contexts.ndim != 2 or contexts.shape[1] != vectors.shape[1]:
        raise SaetoolsError(
            f"context vectors of width {contexts.shape[-1]} cannot be mixed with label "
            f"embeddings of width {vectors.shape[1]} (another embedding model?)"
        )
    ctx = contexts[latents].astype(np.float32)
    has = np.linalg.norm(ctx, axis=1) > 0
    mixed = vectors.copy()
    mixed[has] = (1 - CONTEXT_WEIGHT) * vectors[has] + CONTEXT_WEIGHT * ctx[has]
    mixed[has] /= np.linalg.norm(mixed[has], axis=1, keepdims=True)
    return mixed


@lru_cache(maxsize=1)
def default_embedder():
    """The shipped MiniLM, loaded once per process (queries are embedded one at a time)."""
    from ..readers.embedding import EmbeddingReader

    return EmbeddingReader(batch_size=256)


def shipped_vectors_path(folder: str | Path, key: str) -> Path:
    """Where label embeddings shipped next to an SAE live (``key``: :attr:`LabelIndex.key`)."""
    return Path(folder) / f"label-embeddings-{key}.safetensors"


def ship_label_vectors(rows: list[dict], folder: str | Path) -> LabelIndex:
    """Embed a pack's label rows the way queries are matched to them and write the embeddings
    beside the SAE in ``folder`` (found there by :class:`LabelIndex` through ``shipped``, so a
    new machine embeds nothing); returns the index."""
    index = index_of_label_rows({int(r["latent"]): r for r in rows}, None, None)
    path = shipped_vectors_path(folder, index.key)
    save_label_vectors(path, index.texts, index.text_vectors, index.model_name)
    return index


def save_label_vectors(path: Path, labels: list[str], vectors: np.ndarray, model: str) -> None:
    """Write label embeddings (float16) with their label texts and model in the metadata."""
    import json

    from ..tensorfile import save_tensors

    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"model": model, "labels": json.dumps(list(labels), ensure_ascii=False)}
    save_tensors(path, {"vectors": vectors.astype(np.float16)}, metadata)


def _known_vectors(folders: list[Path], model: str) -> dict[str, np.ndarray]:
    """Label text -> vector from every embedding file (with texts) in ``folders``."""
    import json

    from safetensors import safe_open

    known: dict[str, np.ndarray] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.safetensors")):
            if not (
                path.name.startswith("label-embeddings") or path.parent.name == "label-embeddings"
            ):
                continue
            try:
                with safe_open(str(path), "np") as fh:
                    meta = fh.metadata() or {}
                    if meta.get("model") != model or "labels" not in meta:
                        continue
                    texts = json.loads(meta["labels"])
                    vectors = fh.get_tensor("vectors").astype(np.float32)
            except (OSError, ValueError):
                continue
            known.update(zip(texts, vectors, strict=True))
    return known


def label_index_for(sae_folder: str | Path | None, *, progress: bool = False) -> LabelIndex:
    """The :class:`LabelIndex` of the labels stored next to an SAE."""
    import json

    from . import best_label_rows

    rows = best_label_rows(sae_folder)
    if not rows:
        raise SaetoolsError(
            f"{sae_folder}: no labels.jsonl beside this SAE; label it first (`saetools label`) "
            "or use an SAE that ships labels"
        )
    cfg = Path(sae_folder) / "cfg.json"
    width = json.loads(cfg.read_text()).get("d_sae") if cfg.is_file() else None
    from ..sae.io import folder_fingerprint

    fingerprint = folder_fingerprint(sae_folder)
    return index_of_label_rows(rows, sae_folder, width, fingerprint=fingerprint, progress=progress)


def index_of_label_rows(
    rows: dict[int, dict],
    sae_folder,
    d_sae: int | None,
    *,
    fingerprint: str | None = None,
    progress: bool = False,
) -> LabelIndex:
    """The :class:`LabelIndex` of an SAE's winning label rows (latent -> row): labels shown,
    label and keywords matched as two texts, mixed with the SAE's context vectors where they
    exist for its width ``d_sae`` (none when it is unknown): this machine's, filed under
    ``fingerprint``, else those beside the SAE."""
    from . import match_texts_of_rows
    from .contexts import find_context_vectors

    contexts = None
    if d_sae is not None:
        contexts = find_context_vectors(sae_folder, fingerprint, DEFAULT_LABEL_MODEL, int(d_sae))
    return LabelIndex(
        {j: str(row["label"]) for j, row in rows.items()},
        match_texts=match_texts_of_rows(rows.values()),
        contexts=contexts,
        progress=progress,
        shipped=sae_folder,
    )
