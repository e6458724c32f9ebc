"""Join stores made with the same reader, SAE and pooling into one (``saetools merge``).

The documents follow each other in the order the stores are given; each input shard becomes a
shard of the result with its rows shifted (hard-linked where the filesystem allows, else
copied; a shard file is never changed in place, so sharing it is safe). ``examples.parquet`` is
computed anew over all documents. The result is built in a temporary folder beside ``out`` and
renamed into place, so an interrupted merge leaves nothing half-written at ``out``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ..errors import SaetoolsError
from .manifest import MANIFEST, write_json_atomic


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def merge_stores(stores, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the stores ``stores`` (open :class:`~saetools.store.Store` objects, all complete
    and comparable) as one store at ``out``; returns its folder."""
    from .docs_table import concat_tables
    from .reader import Store, write_top_examples

    stores = list(stores)
    if len(stores) < 2:
        raise SaetoolsError("merge needs at least two stores")
    first = stores[0]
    for k, other in enumerate(stores[1:], start=2):
        first.check_comparable(other, names=("store 1", f"store {k}"))
        if other.manifest.get("value_dtype") != first.manifest.get("value_dtype"):
            raise SaetoolsError(
                f"{other.folder}: values stored as {other.manifest.get('value_dtype')}, "
                f"not {first.manifest.get('value_dtype')} as in {first.folder}"
            )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SaetoolsError(f"{out}: exists and is not empty; choose another --out")
    tmp = out.with_name(f".{out.name}.merging")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "acts").mkdir(parents=True)
    shards, offset, nnz = [], 0, 0
    digest = hashlib.sha256()
    for store in stores:
        for shard in store.manifest["shards"]:
            name = f"acts/shard-{len(shards):05d}.safetensors"
            _link_or_copy(store.folder / shard["file"], tmp / name)
            lo, hi = shard["rows"]
            shards.append({"file": name, "rows": [lo + offset, hi + offset], "nnz": shard["nnz"]})
            nnz += int(shard["nnz"])
        offset += len(store)
        digest.update(str(store.manifest["source"].get("docs_hash")).encode() + b"\0")
    concat_tables([s.folder / "docs.parquet" for s in stores], tmp / "docs.parquet")
    manifest = {
        **{key: first.manifest[key] for key in first.manifest if key not in ("shards", "source")},
        "source": {
            "name": "merge of " + ", ".join(str(s.folder) for s in stores),
            "merged": [str(s.folder) for s in stores],
            "docs_hash": digest.hexdigest()[:16],
        },
        "n_docs": offset,
        "nnz": nnz,
        "skipped_empty": sum(int(s.manifest.get("skipped_empty", 0)) for s in stores),
        "shards": shards,
        "complete": False,
    }
    cut = sum(int(s.manifest.get("cut_docs", 0)) for s in stores)
    if cut:
        manifest["cut_docs"] = cut
    if first.sae_path is not None:
        manifest["sae"] = {
            **manifest["sae"],
            "relative": os.path.relpath(first.sae_path, out.resolve()),
        }
    write_json_atomic(tmp / MANIFEST, manifest)
    write_top_examples(Store(tmp, require_complete=False))
    manifest["complete"] = True
    write_json_atomic(tmp / MANIFEST, manifest)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
