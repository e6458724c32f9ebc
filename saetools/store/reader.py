"""Open a store: the document table, the pooled CSR matrix, spans of maxima, top examples."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SaetoolsError
from .manifest import describe_difference, identity, read_manifest

TOP_EXAMPLES = 20


def concat_or_empty(arrays: list[np.ndarray], dtype, shape: tuple) -> np.ndarray:
    """``np.concatenate(arrays)`` cast to ``dtype``, or an empty array of ``shape``."""
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(shape, dtype)


class Store:
    """A saetools store on disk (see docs/storage.md).

    ``docs`` is a DataFrame (``id``, ``source``, ``line``, ``text``) in row order; ``matrix`` is a
    ``scipy.sparse.csr_matrix`` (documents x latents, float32) of max-pooled activations; ``spans``
    gives, for each stored entry in ``matrix.data`` order, the character span of the token where
    the maximum occurred.
    """

    def __init__(
        self, folder: str | Path, require_complete: bool = True, lazy: bool | None = None
    ) -> None:
        from .sharded import IN_MEMORY_MAX_ENTRIES
        from .verify import check_files, check_manifest

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        check_manifest(self.folder, self.manifest)
        if require_complete and not self.manifest.get("complete"):
            done = self.manifest["shards"][-1]["rows"][1] if self.manifest["shards"] else 0
            raise SaetoolsError(
                f"{self.folder}: store is incomplete ({done} of {self.manifest['n_docs']} "
                "documents); rerun the same encode command to resume"
            )
        check_files(self.folder, self.manifest)
        self.lazy = self.manifest["nnz"] > IN_MEMORY_MAX_ENTRIES if lazy is None else lazy
        self.lazy_docs = self.lazy

    lazy: bool = False
    """Analyse shard by shard (:mod:`saetools.store.sharded`) instead of loading
    :attr:`matrix`: set for stores above ``IN_MEMORY_MAX_ENTRIES`` entries."""
    lazy_docs: bool = False
    """Read document texts and ids by row group instead of loading ``docs.parquet`` whole: a
    lazy store and the views made of it."""

    def __len__(self) -> int:
        return len(self.docs) if "docs" in self.__dict__ else int(self.manifest["n_docs"])

    def select_rows(self, rows) -> Store:
        """An in-memory view of some documents (``rows`` in the given order): same manifest,
        ``docs``, ``matrix`` and ``spans`` restricted to those rows (``examples`` are not)."""
        import copy

        rows = np.asarray(rows, dtype=np.int64)
        matrix = self.matrix[rows]
        indptr = self.matrix.indptr
        lengths = indptr[rows + 1] - indptr[rows]
        starts = np.repeat(indptr[rows] - np.cumsum(lengths) + lengths, lengths)
        positions = starts + np.arange(int(lengths.sum()))
        view = copy.copy(self)
        view.__dict__.pop("peak_starts", None)
        view.__dict__.pop("examples", None)
        view.__dict__["docs"] = self.docs.iloc[rows].reset_index(drop=True)
        view.__dict__["_loaded"] = (matrix.tocsr(), self.spans[positions])
        return view

    def __repr__(self) -> str:
        return (
            f"Store({str(self.folder)!r}, docs={len(self)}, latents={self.d_sae}, "
            f"nnz={self.manifest['nnz']})"
        )

    given_sae: Path | None = None
    """The SAE folder the user named when this store was opened for data (its labels are the
    ones to show); None: the folder the manifest records."""
    given_source: str | None = None
    """The data file the user named when this (cached) store was opened for it."""

    @property
    def sae_path(self) -> Path | None:
        """Where the SAE whose labels apply is: the one the user named, else where the encode
        found it (its absolute path, the same path relative to this store, the hub reference
        it came from), else the shipped SAE with the same weights (None for an SAE object)."""
        if self.given_sae is not None:
            return self.given_sae
        recorded = self.manifest["sae"]
        path = recorded.get("path")
        if path is not None and Path(path).exists():
            return Path(path)
        relative = recorded.get("relative")
        if relative is not None and (self.folder / relative).exists():
            return (self.folder / relative).resolve()
        if recorded.get("ref"):
            from ..sae.hub import resolve_sae_path

            try:
                return resolve_sae_path(recorded["ref"])
            except SaetoolsError:
                pass
        from ..sae.packs import pack_with_fingerprint  # moved: a shipped SAE is found by weights

        return pack_with_fingerprint(self.sae_fingerprint) or (None if path is None else Path(path))

    @property
    def sae_fingerprint(self) -> str:
        """Hash of the SAE's weights (:func:`saetools.sae.io.sae_fingerprint`)."""
        return self.manifest["sae"]["fingerprint"]

    @property
    def reader_spec(self) -> dict:
        """The reader's description (name, layer, dtype, windowing) as the encode recorded it."""
        return self.manifest["reader"]

    @property
    def source_name(self) -> str | None:
        """The data file (or ``<list>``) the documents were read from: the one the user named,
        not the first file with the same content that filled the cache."""
        return self.given_source or self.manifest["source"].get("name")

    @property
    def min_contribution(self) -> float:
        """The pooling threshold the store was encoded with (0: every firing kept)."""
        return float(self.manifest.get("pooling", {}).get("min_contribution", 0.0))

    @property
    def identity(self) -> dict:
        """What must match for two stores to be comparable: reader, SAE, pooling."""
        return identity(self.manifest)

    def check_comparable(self, other: Store, names=("A", "B")) -> None:
        """Raise unless ``other`` was encoded with the same reader, SAE and pooling."""
        if self.identity != other.identity:
            raise SaetoolsError(
                f"{names[0]} ({self.folder}) and {names[1]} ({other.folder}) were encoded "
                f"differently: {describe_difference(self.identity, other.identity)}"
            )

    def load_sae(self):
        """The SAE the store was encoded with, loaded from its recorded folder."""
        from ..sae.io import load_sae

        if self.sae_path is None:
            raise SaetoolsError(f"{self.folder}: the store does not record where its SAE is")
        return load_sae(self.sae_path)

    def open_reader(self, *, device: str | None = "auto", progress: bool = False):
        """A reader configured exactly as the one that encoded this store."""
        from ..readers.defaults import reader_from_description

        return reader_from_description(self.reader_spec, device=device, quiet=not progress)

    def encode_like(self, texts, *, device: str | None = "auto") -> sp.csr_matrix:
        """Max-pooled SAE vectors (CSR, one row per text) of new texts, made exactly as this
        store's documents were (same reader, SAE and pooling)."""
        from .pooling import pooled_matrix

        sae = self.load_sae()
        reader = self.open_reader(device=device)
        items = reader.iter_activations(list(texts))
        return pooled_matrix(items, sae, self.min_contribution, reader=reader)

    def aligned_with(self, other: Store) -> tuple[Store, Store]:
        """Views of this store and ``other`` restricted to the document ids both hold, in this
        store's order."""
        ids_other = {str(v): r for r, v in enumerate(other.docs["id"])}
        rows_self, rows_other = [], []
        for r, v in enumerate(self.docs["id"]):
            if str(v) in ids_other:
                rows_self.append(r)
                rows_other.append(ids_other[str(v)])
        if not rows_self:
            raise SaetoolsError("the two fields share no documents (no id has text in both)")
        return self.select_rows(np.array(rows_self)), other.select_rows(np.array(rows_other))

    @property
    def d_sae(self) -> int:
        """Number of latents (columns)."""
        return int(self.manifest["sae"]["d_sae"])

    def texts(self, rows) -> list[str]:
        """The texts of documents ``rows`` (without loading the document table of a lazy
        store)."""
        return self._doc_values("text", rows)

    def ids(self, rows) -> list[str]:
        """The ids (as strings) of documents ``rows``."""
        return [str(v) for v in self._doc_values("id", rows)]

    def _doc_values(self, column: str, rows) -> list:
        rows = np.asarray(rows, dtype=np.int64)
        if "docs" in self.__dict__ or not self.lazy_docs:
            return self.docs[column].to_numpy()[rows].tolist()
        return self._doc_column(column).take(rows)  # only the row groups holding the rows

    def _doc_column(self, column: str):
        """A column of ``docs.parquet`` read by row group (checked once against the manifest)."""
        from .docs_table import DocColumn
        from .verify import StoreError

        columns = self.__dict__.setdefault("_doc_columns", {})
        if column not in columns:
            try:
                columns[column] = DocColumn(self.folder / "docs.parquet", column)
            except Exception as exc:  # noqa: BLE001 - any parquet damage
                message = f"unreadable ({type(exc).__name__})"
                raise StoreError(self.folder, "docs.parquet", message) from None
            if len(columns[column]) != self.manifest["n_docs"]:
                raise StoreError(
                    self.folder,
                    "docs.parquet",
                    f"{len(columns[column])} documents; the manifest says "
                    f"{self.manifest['n_docs']}",
                )
        return columns[column]

    @cached_property
    def docs(self) -> pd.DataFrame:
        """One row per document: ``id``, ``source``, ``line``, ``text``."""
        from .verify import read_docs

        return read_docs(self.folder, self.manifest["n_docs"])

    def _load(self):
        indptrs, indices, values, spans = [np.zeros(1, np.int64)], [], [], []
        offset = 0
        from .verify import check_total, read_shard

        for shard in self.manifest["shards"]:
            data = read_shard(self.folder, shard, self.d_sae)
            indptrs.append(data["indptr"][1:] + offset)
            offset += int(data["indptr"][-1])
            indices.append(data["indices"].astype(np.int32))
            values.append(data["values"].astype(np.float32))
            spans.append(data["spans"].reshape(-1, 2))
        check_total(self.folder, self.manifest, offset)
        rows = self.manifest["shards"][-1]["rows"][1] if self.manifest["shards"] else 0
        matrix = sp.csr_matrix(
            (
                concat_or_empty(values, np.float32, (0,)),
                concat_or_empty(indices, np.int32, (0,)),
                np.concatenate(indptrs),
            ),
            shape=(rows, self.d_sae),
        )
        return matrix, concat_or_empty(spans, np.int32, (0, 2))

    @cached_property
    def _loaded(self):
        if self.lazy:
            from .sharded import check_fits_in_memory

            check_fits_in_memory(self)
        return self._load()

    @property
    def matrix(self) -> sp.csr_matrix:
        """Documents x latents, pooled activations (float32)."""
        return self._loaded[0]

    @property
    def spans(self) -> np.ndarray:
        """``[nnz, 2]`` character span of each stored maximum, aligned with ``matrix.data``."""
        return self._loaded[1]

    @cached_property
    def peak_starts(self) -> sp.csr_matrix:
        """Same sparsity as :attr:`matrix`; each entry is 1 + the character offset where that
        latent peaked in that document (the +1 keeps offset 0 distinct from "absent")."""
        m = self.matrix
        starts = (self.spans[:, 0].astype(np.int64) + 1).astype(np.float64)
        return sp.csr_matrix((starts, m.indices, m.indptr), shape=m.shape)

    @property
    def document_level(self) -> bool:
        """True when the reader made one vector per document (no token to point at)."""
        return self.reader_spec.get("kind") == "embedding"

    def span(self, row: int, latent: int) -> tuple[int, int] | None:
        """Character span where ``latent`` peaked in document ``row`` (None if not stored;
        ``(0, 0)``, nothing to mark, in a document-level store)."""
        lo, hi = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        pos = np.searchsorted(self.matrix.indices[lo:hi], latent)
        if pos < hi - lo and self.matrix.indices[lo + pos] == latent:
            return (0, 0) if self.document_level else tuple(int(v) for v in self.spans[lo + pos])
        return None

    @cached_property
    def examples(self) -> pd.DataFrame:
        """Top activating documents per latent: ``latent``, ``rank``, ``row``, ``value``, span."""
        from .verify import read_examples

        return read_examples(self.folder)


def open_store(path: str | Path, lazy: bool | None = None) -> Store:
    """Open a complete store (``saetools encode`` output). ``lazy``: analyse it shard by shard
    rather than in memory (default: only when it has more than ``IN_MEMORY_MAX_ENTRIES``
    entries; docs/scale.md)."""
    return Store(path, lazy=lazy)


def write_top_examples(store: Store, top: int = TOP_EXAMPLES, progress: bool = False) -> Path:
    """Write ``examples.parquet``: for every latent, its ``top`` highest-activating documents
    (read shard by shard, so a store of any size fits)."""
    from .sharded import top_entries

    frame = top_entries(store, top, progress=progress)
    path = store.folder / "examples.parquet"
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
