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


def _record_text(record: Any, field: str, role: str | None, file: Path, line: int) -> str:
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
    if not isinstance(value, str | int | float):
        raise InputError(
            f"expected text, found {type(value).__name__}", file=file, line=line, field=field
        )
    return str(value)


def _record_id(record: Any, id_field: str | None, file: Path, line: int) -> str:
    if id_field is None:
        return str(line)
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


def _iter_jsonl(path: Path, field: str, id_field: str | None, role: str | None):
    for number, record in iter_json_lines(path):
        yield (
            _record_id(record, id_field, path, number),
            _record_text(record, field, role, path, number),
            number,
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
    for row in reader:
        number = reader.line_num
        yield (str(row[id_field]) if id_field else str(number)), row[field] or "", number


def _iter_parquet(path: Path, field: str, id_field: str | None):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise InputError(f"cannot read Parquet ({exc})", file=path) from None
    columns = table.column_names
    top = field.split(".")[0]
    if top not in columns:
        raise InputError(f"no such column (columns: {', '.join(columns)})", file=path, field=field)
    records = table.to_pylist()
    for number, record in enumerate(records, start=1):
        yield (
            _record_id(record, id_field, path, number),
            _record_text(record, field, None, path, number),
            number,
        )


def _iter_hf_dataset(path: Path, field: str, id_field: str | None, role: str | None):
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
                table = pa.ipc.open_stream(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"cannot read Arrow data ({exc})", file=arrow) from None
        top = field.split(".")[0]
        if top not in table.column_names:
            raise InputError(
                f"no such column (columns: {', '.join(table.column_names)})", file=path, field=field
            )
        for record in table.to_pylist():
            number += 1
            yield (
                _record_id(record, id_field, path, number),
                _record_text(record, field, role, path, number),
                number,
            )


def _iter_text(path: Path):
    for number, raw in _decoded_lines(path):
        yield str(number), raw.rstrip("\r\n"), number


def iter_documents(
    path: str | Path,
    field: str = "text",
    *,
    id_field: str | None = None,
    role: str | None = None,
) -> Iterator[tuple[str, str, int]]:
    """Yield ``(id, text, line)`` for every record of a data file, empty texts included.

    The format follows the suffix: ``.jsonl``/``.json``/``.ndjson``, ``.csv``, ``.tsv``,
    ``.parquet``, a folder saved by ``datasets.Dataset.save_to_disk``, anything else as plain
    text with one document per line. ``field`` is a dotted
    path into each record; with ``role`` set, ``field`` names a chat ``messages`` list and the
    contents of that role's messages are joined.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", file=path)
    if path.is_dir():
        if (path / "state.json").exists():
            yield from _iter_hf_dataset(path, field, id_field, role)
            return
        raise InputError("is a directory, expected a data file or a saved dataset", file=path)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _iter_jsonl(path, field, id_field, role)
    elif suffix in CSV_SUFFIXES:
        yield from _iter_csv(path, CSV_SUFFIXES[suffix], field, id_field)
    elif suffix == ".parquet":
        yield from _iter_parquet(path, field, id_field)
    else:
        yield from _iter_text(path)


def read_corpus(
    source: str | Path | Sequence[str],
    field: str = "text",
    *,
    id_field: str | None = None,
    role: str | None = None,
    warn: bool = True,
) -> Corpus:
    """Read every non-empty document of a data file (or a list of strings).

    Empty or whitespace-only documents are skipped with a warning giving their count; a source
    with no documents at all is an :class:`InputError`.
    """
    if isinstance(source, str | Path):
        rows = iter_documents(source, field, id_field=id_field, role=role)
        name = str(source)
    else:
        rows = ((str(i), str(t), i + 1) for i, t in enumerate(source))
        name = "<list>"
    documents, skipped = [], 0
    for doc_id, text, line in rows:
        if not text.strip():
            skipped += 1
            continue
        documents.append(Document(doc_id, text, line))
    if skipped and warn:
        print(f"warning: {name}: skipped {skipped} empty document(s)", file=sys.stderr)
    if not documents:
        raise InputError("no documents (the source is empty or every text is blank)", file=name)
    return Corpus(documents, skipped, name)


def content_key(data, field: str = "text", id_field: str | None = None, role: str | None = None):
    """Short hash of what ``read_corpus(data, field, ...)`` would read: the bytes of the file
    (every file of a folder) or the texts of a list, and the field options."""
    import hashlib

    digest = hashlib.sha256(repr((field, id_field, role)).encode())
    if isinstance(data, str | Path):
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


def check_input(data) -> None:
    """Raise a one-line error if ``data`` names a file or folder that does not exist (checked
    before any model is loaded)."""
    if isinstance(data, str | Path) and not Path(data).exists():
        raise InputError("no such file", file=data)
