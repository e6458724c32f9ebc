"""Bring existing latent explanations: Neuronpedia exports, label maps and lists, CSV or JSONL.

Accepted files (the format follows the suffix and the content):

- ``.csv`` / ``.tsv`` with a header: ``latent,label[,score]``;
- ``.jsonl``: one object per line with ``latent`` and ``label`` (and optionally ``score``);
- ``.json``: a list of objects (a Neuronpedia explanation export: ``index``, ``description``,
  ``explanationModelName``; Goodfire-style lists with ``index_in_sae``/``feature_id`` and
  ``label``), or an object mapping latent ids to labels (``{"12": "legal text", ...}``).

Field names are matched from a few common aliases (:data:`LATENT_KEYS`, :data:`LABEL_KEYS`).
Where a file holds several explanations of one latent, the one with the highest score (else the
first) is kept. Imported labels are filed under the SAE's weight fingerprint, like labels made
with ``saetools label``, and win over machine labels wherever labels are used.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import InputError

LATENT_KEYS = ("latent", "index", "feature", "feature_id", "feature_index", "index_in_sae", "id")
LABEL_KEYS = ("label", "description", "explanation", "text")
SCORE_KEYS = ("score",)
MODEL_KEYS = ("explanationModelName", "model", "explainer")


def _pick(record: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in record and record[key] is not None:
            return key, record[key]
    return None, None


def _row(record: Any, file: Path, line: int, d_sae: int | None) -> dict | None:
    if not isinstance(record, dict):
        raise InputError("expected an object with a latent id and a label", file=file, line=line)
    key, latent = _pick(record, LATENT_KEYS)
    if key is None:
        raise InputError(f"no latent id (one of: {', '.join(LATENT_KEYS)})", file=file, line=line)
    try:
        latent = int(str(latent).strip())
    except ValueError:
        raise InputError(f"not an integer: {latent!r}", file=file, line=line, field=key) from None
    if latent < 0 or (d_sae is not None and latent >= d_sae):
        bound = f" (the SAE has {d_sae} latents)" if d_sae is not None else ""
        raise InputError(f"latent {latent} out of range{bound}", file=file, line=line, field=key)
    label_key, label = _pick(record, LABEL_KEYS)
    if label_key is None:
        raise InputError(f"no label (one of: {', '.join(LABEL_KEYS)})", file=file, line=line)
    label = " ".join(str(label).split())
    if not label:
        return None
    row: dict[str, Any] = {"latent": latent, "label": label}
    score_key, score = _pick(record, SCORE_KEYS)
    if score_key is not None and score != "":
        try:
            row["imported_score"] = float(score)
        except (TypeError, ValueError):
            raise InputError(
                f"not a number: {score!r}", file=file, line=line, field=score_key
            ) from None
    _, model = _pick(record, MODEL_KEYS)
    if model:
        row["model"] = str(model)
    return row


def _records(path: Path):
    """``(line, record)`` of every explanation in the file."""
    from ..corpus import iter_json_lines

    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", file=path) from None
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="," if suffix == ".csv" else "\t"
        )
        for record in reader:
            yield reader.line_num, record
    elif suffix == ".jsonl":
        yield from iter_json_lines(path)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"malformed JSON ({exc})", file=path) from None
        if isinstance(data, dict) and not any(k in data for k in LATENT_KEYS):
            data = data.get("explanations", data)
        if isinstance(data, dict):  # {"12": "label"}
            for number, (latent, label) in enumerate(data.items(), start=1):
                yield number, {"latent": latent, "label": label}
        elif isinstance(data, list):
            yield from enumerate(data, start=1)
        else:
            raise InputError("expected a list of explanations or a latent -> label map", file=path)
    else:
        raise InputError("unknown label file type (use .csv, .tsv, .jsonl or .json)", file=path)


def read_explanations(path: str | Path, d_sae: int | None = None) -> list[dict]:
    """One row per latent (``latent``, ``label``, and ``imported_score``/``model`` when the file
    has them) from an explanation file; a bad record is a one-line error naming its line."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", file=path)
    best: dict[int, dict] = {}
    for line, record in _records(path):
        row = _row(record, path, line, d_sae)
        if row is None:
            continue
        held = best.get(row["latent"])
        if held is None or row.get("imported_score", float("-inf")) > held.get(
            "imported_score", float("-inf")
        ):
            best[row["latent"]] = row
    if not best:
        raise InputError("no labels in the file", file=path)
    return [best[j] for j in sorted(best)]


def import_labels(path: str | Path, sae) -> tuple[Path, int]:
    """Import the explanations in ``path`` for the SAE ``sae`` (a path or hub reference):
    ``(labels file written, number of latents labelled)``."""
    from ..sae.io import folder_fingerprint, load_sae
    from . import write_user_labels

    model = load_sae(sae)
    rows = read_explanations(path, model.cfg.d_sae)
    origin = Path(path).name
    for row in rows:
        row["source"] = "imported"
        row["origin"] = origin
        row.setdefault("model", origin)
    written = write_user_labels(None, rows, fingerprint=folder_fingerprint(sae))
    return written, len(rows)
