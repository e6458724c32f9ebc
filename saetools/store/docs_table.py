"""A store's document table (``docs.parquet``): written in row groups as documents stream in,
read back by row range, so neither writing nor encoding holds the corpus in memory."""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..corpus import Corpus, CorpusStream, finish_reading, warn_repeated_ids

DOCS_ROW_GROUP = 16384
"""Rows per row group of ``docs.parquet``: encoding and lazy stores read texts by group."""


def hash_documents(pairs) -> str:
    """Hash of ``(id, text)`` pairs, in order (16 hex digits)."""
    digest = hashlib.sha256()
    for doc_id, text in pairs:
        _hash_document(digest, doc_id, text)
    return digest.hexdigest()[:16]


def _hash_document(digest, doc_id: str, text: str) -> None:
    digest.update(doc_id.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass") + b"\1")


class SpooledDocs(NamedTuple):
    """A document table written to ``path`` (to be moved into a store), and what it holds."""

    path: Path
    n_docs: int
    skipped_empty: int
    docs_hash: str
    source: str


def _schema():
    import pyarrow as pa

    return pa.schema(
        [("id", pa.string()), ("source", pa.string()), ("line", pa.int64()), ("text", pa.string())]
    )


class _TableWriter:
    """Rows appended one at a time, written a row group at a time, hashed as they go."""

    def __init__(self, path: Path, source: str) -> None:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(path, _schema())
        self.source = source
        self.digest = hashlib.sha256()
        self.ids: list[str] = []
        self.lines: list[int] = []
        self.texts: list[str] = []
        self.count = 0

    def add(self, doc_id: str, text: str, line: int) -> None:
        _hash_document(self.digest, doc_id, text)
        self.ids.append(doc_id)
        self.lines.append(line)
        self.texts.append(text)
        self.count += 1
        if len(self.ids) == DOCS_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.ids:
            columns = {
                "id": self.ids,
                "source": [self.source] * len(self.ids),
                "line": np.asarray(self.lines, dtype=np.int64),
                "text": self.texts,
            }
            self.writer.write_table(pa.table(columns, schema=_schema()))
        self.ids, self.lines, self.texts = [], [], []

    def close(self) -> str:
        self.flush()
        self.writer.close()
        return self.digest.hexdigest()[:16]


def _id_digest(doc_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    )


def spool_documents(stream: CorpusStream, path: Path, *, warn: bool = True) -> SpooledDocs:
    """Read ``stream`` once into a document table at ``path``: empty texts skipped, ids that
    repeat replaced by line numbers (as :func:`saetools.corpus.read_corpus` does; repeats are
    found from 64-bit digests of the ids, 8 bytes per document), in memory bounded by a row
    group. The table is written beside its destination and renamed by the caller."""
    table = _TableWriter(path, stream.name)
    digests = array("Q")
    differs = False  # some id is not its line number
    skipped = 0
    try:
        for doc_id, text, line in stream.rows():
            if not text.strip():
                skipped += 1
                continue
            table.add(doc_id, text, line)
            if stream.id_field is None:
                digests.append(_id_digest(doc_id))
                differs = differs or doc_id != str(line)
        docs_hash = table.close()
        finish_reading(stream.name, table.count, skipped, warn)
        ids = np.frombuffer(digests, dtype=np.uint64)
        if stream.id_field is None and len(np.unique(ids)) < len(ids):
            if differs and warn:
                warn_repeated_ids(stream.name)
            docs_hash = _number_ids_by_line(path, stream.name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return SpooledDocs(path, table.count, skipped, docs_hash, stream.name)


def _number_ids_by_line(path: Path, source: str) -> str:
    """Rewrite the table at ``path`` with each document's line number as its id."""
    import pyarrow.parquet as pq

    renumbered = path.with_name(path.name + ".ids")
    table = _TableWriter(renumbered, source)
    file = pq.ParquetFile(path)
    for group in range(file.num_row_groups):
        part = file.read_row_group(group, columns=["line", "text"])
        for line, text in zip(part["line"].to_pylist(), part["text"].to_pylist(), strict=True):
            table.add(str(line), text, line)
    docs_hash = table.close()
    os.replace(renumbered, path)
    return docs_hash


def concat_tables(paths, out: Path) -> None:
    """Write the document tables ``paths`` one after another as one table at ``out``, a row
    group at a time (a merge of stores of any size)."""
    import pyarrow.parquet as pq

    schema = _schema()
    with pq.ParquetWriter(out, schema) as writer:
        for path in paths:
            file = pq.ParquetFile(path)
            for group in range(file.num_row_groups):
                part = file.read_row_group(group, columns=schema.names)
                writer.write_table(part.cast(schema))


def spool_corpus(corpus: Corpus, path: Path) -> SpooledDocs:
    """The document table of a corpus already read into memory (its ids are final)."""
    table = _TableWriter(path, corpus.source)
    for doc in corpus.documents:
        table.add(doc.id, doc.text, doc.line)
    docs_hash = table.close()
    return SpooledDocs(path, table.count, corpus.skipped_empty, docs_hash, corpus.source)


def spool(corpus: Corpus | CorpusStream, path: Path, warn: bool = True) -> SpooledDocs:
    """:func:`spool_corpus` or :func:`spool_documents`, whichever ``corpus`` asks for."""
    if isinstance(corpus, CorpusStream):
        return spool_documents(corpus, path, warn=warn)
    return spool_corpus(corpus, path)


class DocColumn(Sequence):
    """One column of a document table as a read-only sequence that reads row groups on demand
    (the group last read is kept), so ``column[lo:hi]`` or ``column.take(rows)`` costs those
    rows' groups only."""

    def __init__(self, path: str | Path, column: str = "text") -> None:
        import pyarrow.parquet as pq

        self.column = column
        self.file = pq.ParquetFile(path)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self._group: tuple[int, list] | None = None

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def _group_of(self, row: int) -> int:
        return int(np.searchsorted(self.bounds, row, side="right") - 1)

    def _values_of(self, group: int) -> list:
        if self._group is None or self._group[0] != group:
            values = self.file.read_row_group(group, columns=[self.column]).column(0).to_pylist()
            self._group = (group, values)
        return self._group[1]

    def take(self, rows) -> list:
        """The values of ``rows`` (any order, repeats allowed), reading each group once."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        out: list = [None] * len(rows)
        groups = np.searchsorted(self.bounds, rows, side="right") - 1
        for group in np.unique(groups):
            values = self._values_of(int(group))
            for k in np.flatnonzero(groups == group):
                out[k] = values[rows[k] - self.bounds[group]]
        return out

    def __getitem__(self, index):
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            if step != 1:
                return self.take(range(lo, hi, step))
            out: list = []
            row = lo
            while row < hi:
                group = self._group_of(row)
                end = min(hi, int(self.bounds[group + 1]))
                values = self._values_of(group)
                out.extend(values[row - self.bounds[group] : end - self.bounds[group]])
                row = end
            return out
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        group = self._group_of(index)
        return self._values_of(group)[index - int(self.bounds[group])]
