"""Read text documents from JSONL, CSV/TSV, Parquet or plain-text files.

Every document gets an id (a given field, else its line number) and keeps the line it came from,
so errors and reports can point back at the source.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InputError

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
TEXT_SUFFIXES = {".txt", ".text", ""}


class Document(NamedTuple):
    """One text document and where it came from."""

    id: str
    text: str
    line: int  # 1-based line (or row) number in the source file


class Corpus(NamedTuple):
    """Documents read from one source, plus how many empty ones were skipped."""

    documents: list[Document]
    skipped_empty: int
    source: str

    @property
    def texts(self) -> list[str]:
        """The document texts, in order."""
        return [d.text for d in self.documents]


def get_field(record: Any, path: str) -> Any:
    """Follow a dotted path (``response.content``, ``items.0.text``) into nested dicts/lists.

    Raises KeyError when a step is missing.
    """
    value = record
    for step in path.split("."):
        if isinstance(value, dict):
            if step not in value:
                raise KeyError(step)
            value = value[step]
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            try:
                value = value[int(step)]
            except IndexError:
                raise KeyError(step) from None
        else:
            raise KeyError(step)
    return value


def _chat_text(messages: Any, role: str) -> str:
    """Join the contents of the messages with the given role."""
    if not isinstance(messages, list):
        raise TypeError("'messages' is not a list")
    parts = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") == role:
            content = message.get("content", "")
            if isinstance(content, list):  # OpenAI content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(str(content))
    return "\n\n".join(parts)


def is_chat(value: Any) -> bool:
    """True for a list of chat messages (dicts with ``role`` and ``content``)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def plain_chat(messages: list[dict]) -> str:
    """A conversation as text without a model's chat template: ``role: content`` blocks."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _record_text(
    record: Any, field: str, role: str | None, file: Path, line: int, render=None
) -> str:
    if role is not None:
        try:
            messages = get_field(record, field)
            return _chat_text(messages, role)
        except (KeyError, TypeError) as exc:
            raise InputError(
                f"no chat messages ({exc})", file=file, line=line, field=field
            ) from None
    try:
        value = get_field(record, field)
    except KeyError:
        keys = ", ".join(sorted(record)[:8]) if isinstance(record, dict) else type(record).__name__
        raise InputError(
            f"missing (record has: {keys})", file=file, line=line, field=field
        ) from None
    if value is None:
        return ""
    if is_chat(value):  # a whole conversation: the reader's chat template, when it has one
        messages = [{"role": m["role"], "content": _chat_text([m], m["role"])} for m in value]
        return (render or plain_chat)(messages)
    if not isinstance(value, str | int | float):
        raise InputError(
            f"expected text, found {type(value).__name__}", file=file, line=line, field=field
        )
    return str(value)


AUTO_ID_FIELD = "id"
"""Without ``id_field``, records that have this field take their ids from it (line numbers
otherwise, and where those ids repeat)."""


def _record_id(record: Any, id_field: str | None, file: Path, line: int, offset: int = 0) -> str:
    if id_field is None:
        value = record.get(AUTO_ID_FIELD) if isinstance(record, dict) else None
        if value is None or isinstance(value, dict | list):
            return str(offset + line)
        return str(value)
    try:
        return str(get_field(record, id_field))
    except KeyError:
        raise InputError("missing id", file=file, line=line, field=id_field) from None


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"not valid UTF-8 (byte {exc.start} of the line)", file=path, line=number
                ) from None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of a JSONL file; a line that is not UTF-8
    or not JSON is a one-line :class:`InputError` naming the file and line."""
    for number, raw in _decoded_lines(Path(path)):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg})", file=path, line=number) from None
        yield number, value


def _iter_jsonl(
    path: Path, field: str, id_field: str | None, role: str | None, render=None, offset: int = 0
):
    """Records of a JSONL file; line numbers (ids by default) count from ``offset`` + 1 (a
    shard of a folder continues its predecessor's count); errors name the file's own line."""
    for number, record in iter_json_lines(path):
        yield (
            _record_id(record, id_field, path, number, offset),
            _record_text(record, field, role, path, number, render),
            offset + number,
        )


def _iter_csv(path: Path, delimiter: str, field: str, id_field: str | None):
    try:
        data = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError("not valid UTF-8", file=path, line=line) from None
    reader = csv.DictReader(io.StringIO(data, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    for wanted in [field] + ([id_field] if id_field else []):
        if wanted not in columns:
            raise InputError(
                f"no such column (columns: {', '.join(columns)})", file=path, line=1, field=wanted
            )
    auto = id_field is None and AUTO_ID_FIELD in columns
    for row in reader:
        number = reader.line_num
        key = id_field or (AUTO_ID_FIELD if auto else None)
        yield (str(row[key]) if key else str(number)), row[field] or "", number


PARQUET_BATCH_ROWS = 8192
"""Rows of a Parquet file decoded at a time (memory does not grow with the file)."""


def _iter_parquet(path: Path, field: str, id_field: str | None, role=None, render=None, offset=0):
    """Records of one Parquet file, read a batch of rows at a time; rows are numbered from
    ``offset`` + 1 (see :func:`_iter_jsonl`)."""
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        columns = file.schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(f"cannot read Parquet ({exc})", file=path) from None
    top = field.split(".")[0]
    if top not in columns:
        raise InputError(f"no such column (columns: {', '.join(columns)})", file=path, field=field)
    number = 0
    try:
        batches = file.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        for batch in batches:
            for record in batch.to_pylist():
                number += 1
                yield (
                    _record_id(record, id_field, path, number, offset),
                    _record_text(record, field, role, path, number, render),
                    offset + number,
                )
    except OSError as exc:
        raise InputError(f"cannot read Parquet ({exc})", file=path, line=number + 1) from None


def _iter_shards(path: Path, field: str, id_field: str | None, role: str | None, render=None):
    """A folder of Parquet or JSONL shards, in name order, numbered as one table."""
    shards = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".jsonl"))
    kinds = {p.suffix.lower() for p in shards}
    if len(kinds) > 1:
        raise InputError("holds both .parquet and .jsonl files; use one kind per folder", file=path)
    offset = 0
    for shard in shards:
        reader = _iter_parquet if shard.suffix.lower() == ".parquet" else _iter_jsonl
        number = offset
        for doc_id, text, number in reader(shard, field, id_field, role, render, offset):
            yield doc_id, text, number
        offset = number


def iter_records(records, name: str, field: str = "text", *, id_field=None, role=None, render=None):
    """``(id, text, row)`` of in-memory records (dicts: a ``datasets.Dataset``, a list), read as a
    data file's records are; errors name ``name`` and the row."""
    for number, record in enumerate(records, start=1):
        yield (
            _record_id(record, id_field, name, number),
            _record_text(record, field, role, name, number, render),
            number,
        )


def _iter_hf_dataset(path: Path, field: str, id_field: str | None, role: str | None, render=None):
    """A Hugging Face ``datasets`` folder written by ``save_to_disk`` (Arrow stream files listed
    in ``state.json``), read with pyarrow alone."""
    import json as _json

    import pyarrow as pa

    try:
        state = _json.loads((path / "state.json").read_text())
        files = [path / f["filename"] for f in state["_data_files"]]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"not a readable Hugging Face dataset folder ({exc})", file=path) from None
    number = 0
    for arrow in files:
        try:
            with pa.memory_map(str(arrow)) as source:
                stream = pa.ipc.open_stream(source)
                top = field.split(".")[0]
                if top not in stream.schema.names:
                    columns = ", ".join(stream.schema.names)
                    raise InputError(f"no such column (columns: {columns})", file=path, field=field)
                for batch in stream:  # record batch by record batch, memory-mapped
                    for record in batch.to_pylist():
                        number += 1
                        yield (
                            _record_id(record, id_field, path, number),
                            _record_text(record, field, role, path, number, render),
                            number,
                        )
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"cannot read Arrow data ({exc})", file=arrow) from None


def _iter_text(path: Path):
    for number, raw in _decoded_lines(path):
        yield str(number), raw.rstrip("\r\n"), number


def iter_documents(
    path: str | Path,
    field: str = "text",
    *,
    id_field: str | None = None,
    role: str | None = None,
    render=None,
) -> Iterator[tuple[str, str, int]]:
    """Yield ``(id, text, line)`` for every record of a data file, empty texts included.

    The format follows the suffix: ``.jsonl``/``.json``/``.ndjson``, ``.csv``, ``.tsv``,
    ``.parquet``, a folder of ``.parquet`` or ``.jsonl`` shards (read in name order as one
    table), a folder saved by ``datasets.Dataset.save_to_disk``, anything else as plain text
    with one document per line. ``field`` is a dotted path into each record; with ``role`` set,
    ``field`` names a chat ``messages`` list and the contents of that role's messages are
    joined; without it a whole conversation is rendered by ``render`` (a reader's chat template)
    or as ``role: content`` blocks. Ids come from ``id_field``, else from an ``id`` field where
    records have one, else from line numbers.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", file=path)
    if path.is_dir():
        if (path / "state.json").exists():
            yield from _iter_hf_dataset(path, field, id_field, role, render)
            return
        if any(p.suffix.lower() in (".parquet", ".jsonl") for p in path.iterdir()):
            yield from _iter_shards(path, field, id_field, role, render)
            return
        raise InputError(
            "is a directory without .parquet or .jsonl shards or a saved dataset", file=path
        )
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _iter_jsonl(path, field, id_field, role, render)
    elif suffix in CSV_SUFFIXES:
        yield from _iter_csv(path, CSV_SUFFIXES[suffix], field, id_field)
    elif suffix == ".parquet":
        yield from _iter_parquet(path, field, id_field, role, render)
    else:
        yield from _iter_text(path)


def read_corpus(
    source: str | Path | Sequence[str],
    field: str = "text",
    *,
    id_field: str | None = None,
    role: str | None = None,
    warn: bool = True,
    render=None,
) -> Corpus:
    """Read every non-empty document of a data file, a ``datasets.Dataset`` or a list of
    strings (see :func:`iter_documents`; ``render`` formats chat conversations).

    Empty or whitespace-only documents are skipped with a warning giving their count; a source
    with no documents at all is an :class:`InputError`. Ids taken from ``id`` fields that repeat
    are replaced by line numbers, with a warning.
    """
    stream = stream_corpus(source, field, id_field=id_field, role=role, render=render)
    name, rows = stream.name, stream.rows()
    documents, skipped = [], 0
    for doc_id, text, line in rows:
        if not text.strip():
            skipped += 1
            continue
        documents.append(Document(doc_id, text, line))
    if id_field is None and len({d.id for d in documents}) < len(documents):
        if any(d.id != str(d.line) for d in documents) and warn:
            warn_repeated_ids(name)
        documents = [d._replace(id=str(d.line)) for d in documents]
    finish_reading(name, len(documents), skipped, warn)
    return Corpus(documents, skipped, name)


def warn_repeated_ids(name: str) -> None:
    """Say that the records' ids repeat, so line numbers identify the documents."""
    print(
        f"warning: {name}: the records' '{AUTO_ID_FIELD}' values repeat; documents are "
        "identified by line number (name a unique field with --id-field)",
        file=sys.stderr,
    )


def finish_reading(name: str, n_docs: int, skipped: int, warn: bool) -> None:
    """Warn about skipped empty documents; a source without documents is an error."""
    if skipped and warn:
        print(f"warning: {name}: skipped {skipped} empty document(s)", file=sys.stderr)
    if not n_docs:
        raise InputError("no documents (the source is empty or every text is blank)", file=name)


class CorpusStream(NamedTuple):
    """A source read lazily: ``rows()`` yields ``(id, text, line)`` (empty texts included) each
    time it is called, one record in memory at a time (JSONL by lines, Parquet by batches of
    rows, Hugging Face datasets by record batches)."""

    name: str
    rows: Any  # () -> Iterator[tuple[str, str, int]]
    id_field: str | None


def stream_corpus(
    source, field: str = "text", *, id_field=None, role=None, render=None
) -> CorpusStream:
    """A :class:`CorpusStream` of a data file, a ``datasets.Dataset`` or a list of strings, read
    as :func:`read_corpus` reads them."""
    if isinstance(source, str | Path):
        check_input(source)
        name = str(source)

        def rows():
            return iter_documents(source, field, id_field=id_field, role=role, render=render)

    elif is_hf_dataset(source):
        name = dataset_name(source)

        def rows():
            return iter_records(source, name, field, id_field=id_field, role=role, render=render)

    else:
        name = "<list>"

        def rows():
            return ((str(i), str(t), i + 1) for i, t in enumerate(source))

    return CorpusStream(name, rows, id_field)


def content_key(data, field: str = "text", id_field: str | None = None, role: str | None = None):
    """Short hash of what ``read_corpus(data, field, ...)`` would read: the bytes of the file
    (every file of a folder) or the texts of a list, and the field options."""
    import hashlib

    # the id rule is part of the key: a store cached under another rule has other ids
    digest = hashlib.sha256(repr((field, id_field, role, f"ids:{AUTO_ID_FIELD}")).encode())
    if is_hf_dataset(data):
        digest.update(f"datasets:{data._fingerprint}".encode())
    elif isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise InputError("no such file", file=path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
            with open(file, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
    else:
        for text in data:
            digest.update(str(text).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def is_hf_dataset(data) -> bool:
    """True for a ``datasets.Dataset`` (checked without importing ``datasets``)."""
    return type(data).__name__ == "Dataset" and hasattr(data, "_fingerprint")


def dataset_name(dataset) -> str:
    """How errors and reports name a ``datasets.Dataset``."""
    info = getattr(dataset, "info", None)
    name = getattr(info, "dataset_name", None) or "dataset"
    split = getattr(dataset, "split", None)
    return f"hf:{name}" + (f"[{split}]" if split else "")


def load_hf_dataset(name: str, split: str = "train", config: str | None = None):
    """A dataset from the Hugging Face hub (or a local folder ``datasets`` reads) by name,
    through the optional ``datasets`` package (``pip install 'saetools[hf]'``)."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            "reading a dataset by name needs the datasets package: pip install 'saetools[hf]'",
            file=f"hf:{name}",
        ) from None
    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # missing files, configs, splits, no network: several types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot load the dataset ({first})", file=f"hf:{name}") from None


def check_input(data) -> None:
    """Raise a one-line error if ``data`` names a file or folder that does not exist (checked
    before any model is loaded)."""
    if isinstance(data, str | Path) and not Path(data).exists():
        raise InputError("no such file", file=data)
