"""Damaged and lying stores: every problem is one line naming the store and the file (exit 2),
shard paths stay inside the store, and encoding again repairs only the damaged shards."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import saetools
from saetools.store.verify import StoreError, verify_store

from .helpers import cli_error, random_sae, write_jsonl

TEXTS = [
    f"Note {i}: the {w} needs {u} today."
    for i, (w, u) in enumerate(
        [("garden", "water"), ("car", "fuel"), ("cat", "food"), ("lamp", "a bulb")] * 6
    )
]


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory, reader_bf16):
    """A 24-document store in three shards, made with a small random SAE."""
    root = tmp_path_factory.mktemp("damage")
    random_sae(root / "sae", seed=2)
    data = write_jsonl(root / "d.jsonl", [{"text": t} for t in TEXTS])
    store = saetools.encode(
        data, root / "store", reader=reader_bf16, sae=root / "sae", shard_docs=8, progress=False
    )
    return {"folder": store.folder, "data": data, "sae": root / "sae"}


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _set_manifest(folder, **changes):
    manifest = _manifest(folder)
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _shard(folder, n=1):
    return folder / _manifest(folder)["shards"][n]["file"]


def _rewrite_shard(folder, **tensors):
    path = _shard(folder)
    data = load_file(str(path))
    data.update(tensors)
    save_file(data, str(path))


DAMAGE = {
    "truncated shard": lambda f: _shard(f).write_bytes(_shard(f).read_bytes()[:200]),
    "zeroed shard": lambda f: _shard(f).write_bytes(bytes(_shard(f).stat().st_size)),
    "garbage shard": lambda f: _shard(f).write_bytes(b"not a safetensors file at all" * 9),
    "latent id out of range": lambda f: _rewrite_shard(
        f, indices=np.full_like(load_file(str(_shard(f)))["indices"], 65404)
    ),
    "row pointer of other rows": lambda f: _rewrite_shard(
        f, indptr=load_file(str(_shard(f)))["indptr"][:-2]
    ),
    "missing shard": lambda f: _shard(f).unlink(),
    "missing docs.parquet": lambda f: (f / "docs.parquet").unlink(),
    "damaged docs.parquet": lambda f: (f / "docs.parquet").write_bytes(b"PAR1garbagePAR1"),
    "rows that do not follow": lambda f: _set_manifest(
        f, shards=[{**s, "rows": [0, 8]} for s in _manifest(f)["shards"]]
    ),
    "no reader": lambda f: _set_manifest(f, reader=None),
    "format_version as a string": lambda f: _set_manifest(f, format_version="1"),
    "complete without shards": lambda f: _set_manifest(f, shards=[]),
    "shards not a list": lambda f: _set_manifest(f, shards={"file": "x"}),
    "n_docs that lies": lambda f: _set_manifest(f, n_docs=25),
    "nnz that lies": lambda f: _set_manifest(f, nnz=_manifest(f)["nnz"] + 1),
    "shard outside the store": lambda f: _set_manifest(
        f, shards=[{**s, "file": "../elsewhere/" + s["file"]} for s in _manifest(f)["shards"]]
    ),
    "absolute shard path": lambda f: _set_manifest(
        f, shards=[{**s, "file": "/etc/passwd"} for s in _manifest(f)["shards"]]
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damage_is_one_line_naming_store_and_file(tmp_path, clean_store, damage):
    folder = tmp_path / "store"
    shutil.copytree(clean_store["folder"], folder)
    DAMAGE[damage](folder)
    with pytest.raises(saetools.SaetoolsError) as info:
        verify_store(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message
    if isinstance(info.value, StoreError):
        assert info.value.file  # names the damaged file
    # using the store fails the same way, never with a traceback
    with pytest.raises(saetools.SaetoolsError):
        store = saetools.open_store(folder)
        _ = (store.matrix, store.docs, store.examples)
        saetools.diff(folder, folder, progress=False)
    assert cli_error("verify", folder)


def test_verify_passes_a_clean_store_and_exits_2_on_damage(tmp_path, clean_store):
    from .test_cli import run_cli

    ok = run_cli("verify", clean_store["folder"])
    assert ok.returncode == 0 and "ok:" in ok.stdout and "24 documents, 3 shards" in ok.stdout
    folder = tmp_path / "store"
    shutil.copytree(clean_store["folder"], folder)
    DAMAGE["garbage shard"](folder)
    bad = run_cli("verify", folder)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "shard-00001" in lines[0]
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("damage", ["garbage shard", "missing shard", "damaged docs.parquet"])
def test_encoding_again_repairs_only_the_damaged_shard(tmp_path, clean_store, reader_bf16, damage):
    folder = tmp_path / "store"
    shutil.copytree(clean_store["folder"], folder)
    manifest = _manifest(folder)
    untouched = {s["file"]: (folder / s["file"]).stat().st_mtime_ns for s in manifest["shards"]}
    DAMAGE[damage](folder)
    store = saetools.encode(
        clean_store["data"],
        folder,
        reader=reader_bf16,
        sae=clean_store["sae"],
        shard_docs=8,
        progress=False,
    )
    verify_store(folder)
    original = saetools.open_store(clean_store["folder"])
    assert (store.matrix != original.matrix).nnz == 0
    assert np.array_equal(store.spans, original.spans)
    for file in (manifest["shards"][0]["file"], manifest["shards"][2]["file"]):
        assert (folder / file).stat().st_mtime_ns == untouched[file]
