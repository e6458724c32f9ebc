"""Seeded fuzzing, bounded in count and time: corrupted data files, label files, manifests and
shards must each give a result or a one-line SaetoolsError, never another exception."""

from __future__ import annotations

import json
import random
import shutil
import time
import traceback

import pytest

import saetools
from saetools.corpus import read_corpus
from saetools.errors import SaetoolsError
from saetools.labels import read_label_file

from .helpers import random_sae, write_jsonl

CASES = 120  # per target
SECONDS = 20.0  # per target, whichever comes first
GOOD_LINES = [
    json.dumps({"id": f"d{i}", "text": f"Line {i} says something ordinary.", "n": i})
    for i in range(6)
]
JUNK = [
    "\x00",
    "\ufeff",
    "\r",
    "\x1b[2J",
    "{",
    "}",
    '"',
    "\\",
    "é",
    "\udcff",
    "null",
    "[]",
    "1e999",
]


def _mutate_text(text: str, rng: random.Random) -> str:
    """One to three random edits: delete, duplicate or insert junk at random places."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text) + 1)
        kind = rng.choice(["delete", "insert", "duplicate", "truncate"])
        if kind == "delete" and text:
            text = text[:i] + text[i + rng.randint(1, 5) :]
        elif kind == "insert":
            text = text[:i] + rng.choice(JUNK) + text[i:]
        elif kind == "duplicate":
            text = text[:i] + text[i : i + 8] + text[i:]
        else:
            text = text[:i]
    return text


def _mutate_value(value, rng: random.Random):
    return rng.choice([None, "x", -1, 0, 10**12, 1.5, [], {}, [1, "a"], True, value])


def _run(target, cases, rng) -> tuple[int, int, list[str]]:
    """``(results, one-line errors, tracebacks)`` of ``target(case)`` over the cases."""
    ok = errors = 0
    crashes: list[str] = []
    deadline = time.monotonic() + SECONDS
    for case in cases:
        if time.monotonic() > deadline:
            break
        try:
            target(case)
            ok += 1
        except SaetoolsError as exc:
            assert "\n" not in str(exc), str(exc)
            errors += 1
        except Exception:  # noqa: BLE001 - what the fuzzing counts
            crashes.append(traceback.format_exc(limit=3))
    return ok, errors, crashes


def test_fuzzed_data_files(tmp_path):
    rng = random.Random(0)
    cases = []
    for k in range(CASES):
        lines = list(GOOD_LINES)
        j = rng.randrange(len(lines))
        lines[j] = _mutate_text(lines[j], rng)
        path = tmp_path / f"c{k}.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        cases.append(path)

    def target(path):
        read_corpus(path, "text", id_field="id")

    ok, errors, crashes = _run(target, cases, rng)
    print(f"data files: {ok} read, {errors} one-line errors, {len(crashes)} tracebacks")
    assert not crashes, crashes[0]
    assert ok and errors


def test_fuzzed_label_files(tmp_path):
    rng = random.Random(1)
    good = [json.dumps({"latent": j, "label": f"words {j}", "score": 0.5}) for j in range(5)]
    cases = []
    for k in range(CASES):
        lines = list(good)
        j = rng.randrange(len(lines))
        if rng.random() < 0.5:
            lines[j] = _mutate_text(lines[j], rng)
        else:
            row = json.loads(lines[j])
            key = rng.choice(list(row))
            row[key] = _mutate_value(row[key], rng)
            lines[j] = json.dumps(row)
        path = tmp_path / f"l{k}.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        cases.append(path)
    ok, errors, crashes = _run(read_label_file, cases, rng)
    print(f"label files: {ok} read, {errors} one-line errors, {len(crashes)} tracebacks")
    assert not crashes, crashes[0]
    assert ok and errors


@pytest.fixture(scope="module")
def store_folder(tmp_path_factory, reader_bf16):
    root = tmp_path_factory.mktemp("fuzz")
    random_sae(root / "sae", 128, seed=3)
    data = write_jsonl(root / "d.jsonl", [{"text": f"Item {i} is here."} for i in range(12)])
    store = saetools.encode(
        data, root / "store", reader=reader_bf16, sae=root / "sae", shard_docs=4, progress=False
    )
    return store.folder


def _use(folder):
    store = saetools.open_store(folder)
    _ = (store.matrix, store.docs, store.examples, store.peak_starts)


def test_fuzzed_manifests(tmp_path, store_folder):
    rng = random.Random(2)
    manifest = json.loads((store_folder / "manifest.json").read_text())
    cases = []
    for k in range(CASES):
        folder = tmp_path / f"s{k}"
        shutil.copytree(store_folder, folder)
        changed = json.loads(json.dumps(manifest))
        parent = changed
        key = rng.choice(list(parent))
        while isinstance(parent[key], dict) and parent[key] and rng.random() < 0.5:
            parent = parent[key]
            key = rng.choice(list(parent))
        if isinstance(parent[key], list) and parent[key] and rng.random() < 0.5:
            shard = rng.choice(parent[key])
            inner = rng.choice(list(shard))
            shard[inner] = _mutate_value(shard[inner], rng)
        elif rng.random() < 0.2:
            del parent[key]
        else:
            parent[key] = _mutate_value(parent[key], rng)
        text = json.dumps(changed)
        if rng.random() < 0.2:
            text = _mutate_text(text, rng)
        (folder / "manifest.json").write_text(text)
        cases.append(folder)
    ok, errors, crashes = _run(_use, cases, rng)
    print(f"manifests: {ok} opened, {errors} one-line errors, {len(crashes)} tracebacks")
    assert not crashes, crashes[0]
    assert errors


def test_fuzzed_shards(tmp_path, store_folder):
    rng = random.Random(3)
    shards = sorted((store_folder / "acts").glob("*.safetensors"))
    cases = []
    for k in range(CASES):
        folder = tmp_path / f"s{k}"
        shutil.copytree(store_folder, folder)
        path = folder / "acts" / rng.choice(shards).name
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 8)):
            kind = rng.random()
            i = rng.randrange(len(data))
            if kind < 0.6:
                data[i] = rng.randrange(256)  # header or tensor bytes
            elif kind < 0.8:
                del data[i:]
                if not data:
                    break
            else:
                data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        path.write_bytes(bytes(data))
        cases.append(folder)
    ok, errors, crashes = _run(_use, cases, rng)
    print(f"shards: {ok} opened, {errors} one-line errors, {len(crashes)} tracebacks")
    assert not crashes, crashes[0]
    assert errors
