"""Check a store before trusting it: the manifest's schema (on every open), each shard's tensors
(when loaded), and everything at once (``saetools verify``).

Every failure is a :class:`StoreError`: one line naming the store, the file and what is wrong;
the CLI exits with status 2 on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SaetoolsError

SHARD_TENSORS = ("indptr", "indices", "values", "spans")


class StoreError(SaetoolsError):
    """A damaged or inconsistent store."""

    exit_code = 2

    def __init__(self, folder: Path, file: str, message: str) -> None:
        self.folder, self.file = Path(folder), file
        super().__init__(f"{folder}: {file}: {message}")


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The cheap checks of a manifest read by :func:`~saetools.store.manifest.read_manifest`
    (which checks its format and version): required fields and their types, and shard row
    ranges that follow each other from 0."""

    def bad(message: str, file: str = "manifest.json"):
        raise StoreError(folder, file, message)

    for key in ("reader", "sae", "pooling", "source"):
        if not isinstance(manifest.get(key), dict):
            bad(f"'{key}' is missing or not an object")
    sae = manifest["sae"]
    if not isinstance(sae.get("fingerprint"), str) or not _int(sae.get("d_sae")):
        bad("'sae' needs a string 'fingerprint' and an integer 'd_sae'")
    if sae["d_sae"] < 1:
        bad(f"sae.d_sae must be positive, got {sae['d_sae']}")
    for key in ("n_docs", "nnz"):
        if not _int(manifest.get(key)) or manifest[key] < 0:
            bad(f"'{key}' must be a non-negative integer, got {manifest.get(key)!r}")
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        bad("'shards' must be a list")
    expected = 0
    for number, shard in enumerate(shards):
        rows = shard.get("rows") if isinstance(shard, dict) else None
        if (
            not isinstance(shard, dict)
            or not isinstance(shard.get("file"), str)
            or not isinstance(rows, list)
            or len(rows) != 2
            or not all(_int(r) for r in rows)
        ):
            bad(f"shard {number} must be {{'file': str, 'rows': [lo, hi], 'nnz': int}}")
        if rows[0] != expected or rows[1] < rows[0]:
            bad(f"shard {number} covers rows {rows}; expected it to start at {expected}")
        expected = rows[1]
    if expected > manifest["n_docs"]:
        bad(f"shards cover {expected} rows but n_docs is {manifest['n_docs']}")
    if manifest.get("complete") and expected != manifest["n_docs"]:
        bad(f"marked complete but its shards cover {expected} of {manifest['n_docs']} documents")


def check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every shard path lies inside the store and names a file; ``docs.parquet`` is there."""
    for shard in manifest["shards"]:
        if not shard_path(folder, shard["file"]).is_file():
            raise StoreError(folder, shard["file"], "missing shard file")
    if not (folder / "docs.parquet").is_file():
        raise StoreError(folder, "docs.parquet", "missing (the document table)")


def check_total(folder: Path, manifest: dict[str, Any], nnz: int) -> None:
    """The shards hold as many entries as the manifest says."""
    if nnz != manifest["nnz"]:
        raise StoreError(folder, "manifest.json", f"nnz is {manifest['nnz']}; shards hold {nnz}")


def read_docs(folder: Path, n_docs: int, columns: list[str] | None = None):
    """``docs.parquet`` (only ``columns`` if given), checked: readable, ``n_docs`` rows, and an
    ``id`` and a ``text`` column when read whole."""
    import pandas as pd

    try:
        docs = pd.read_parquet(folder / "docs.parquet", columns=columns)
    except Exception as exc:  # noqa: BLE001 - any parquet damage
        raise StoreError(folder, "docs.parquet", f"unreadable ({type(exc).__name__})") from None
    whole = columns is None and not {"id", "text"} <= set(docs.columns)
    if len(docs) != n_docs or whole:
        raise StoreError(
            folder,
            "docs.parquet",
            f"{len(docs)} documents with columns {list(docs.columns)}; the manifest says "
            f"{n_docs} with id and text",
        )
    return docs


def read_examples(folder: Path, columns: list[str] | None = None):
    """``examples.parquet`` (only ``columns`` if given); missing or unreadable is an error."""
    import pandas as pd

    path = folder / "examples.parquet"
    if not path.exists():
        raise StoreError(folder, "examples.parquet", "missing")
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:  # noqa: BLE001 - any parquet damage
        raise StoreError(folder, "examples.parquet", f"unreadable ({type(exc).__name__})") from None


def shard_path(folder: Path, file: str) -> Path:
    """The shard's path, which must lie inside the store (no absolute path, no ``..``)."""
    path = (folder / file).resolve()
    if Path(file).is_absolute() or not path.is_relative_to(folder.resolve()):
        raise StoreError(folder, file, "shard path points outside the store")
    return path


def read_shard(folder: Path, shard: dict, d_sae: int) -> dict[str, np.ndarray]:
    """A shard's tensors, checked against the manifest: its rows, latent ids below ``d_sae``,
    one value and one span per entry, a non-decreasing row pointer."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    file = shard["file"]
    try:
        data = load_file(str(shard_path(folder, file)))
    except (SafetensorError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(folder, file, f"unreadable shard ({first})") from None
    missing = [name for name in SHARD_TENSORS if name not in data]
    if missing:
        raise StoreError(folder, file, f"shard lacks tensor(s) {', '.join(missing)}")
    indptr, indices = data["indptr"], data["indices"]
    lo, hi = shard["rows"]
    if indptr.ndim != 1 or len(indptr) != hi - lo + 1:
        raise StoreError(folder, file, f"row pointer has {len(indptr)} entries for rows {lo}:{hi}")
    nnz = int(indptr[-1]) if len(indptr) else 0
    if indptr[0] != 0 or np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise StoreError(folder, file, "row pointer does not start at 0 and rise")
    if len(indices) != nnz or len(data["values"]) != nnz or data["spans"].size != 2 * nnz:
        raise StoreError(
            folder,
            file,
            f"{nnz} entries by the row pointer but {len(indices)} ids, "
            f"{len(data['values'])} values, {data['spans'].size // 2} spans",
        )
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= d_sae):
        raise StoreError(
            folder, file, f"latent id {int(indices.max())} out of range (the SAE has {d_sae})"
        )
    if not np.all(np.isfinite(data["values"])):
        raise StoreError(folder, file, "values that are not finite numbers")
    return data


def verify_store(folder: str | Path) -> dict[str, int]:
    """Every check: the manifest, every shard, the totals, ``docs.parquet`` (its count) and
    ``examples.parquet``, one shard in memory at a time. Returns counts; raises
    :class:`StoreError` at the first problem."""
    from .manifest import read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    check_manifest(folder, manifest)
    check_files(folder, manifest)
    d_sae = manifest["sae"]["d_sae"]
    nnz = 0
    for shard in manifest["shards"]:
        data = read_shard(folder, shard, d_sae)
        count = int(data["indptr"][-1])
        if _int(shard.get("nnz")) and shard["nnz"] != count:
            raise StoreError(
                folder, shard["file"], f"{count} entries, manifest says {shard['nnz']}"
            )
        nnz += count
    check_total(folder, manifest, nnz)
    read_docs(folder, manifest["n_docs"], ["id"])
    if manifest.get("complete"):
        read_examples(folder, ["latent"])
    return {"docs": manifest["n_docs"], "shards": len(manifest["shards"]), "nnz": nnz}
