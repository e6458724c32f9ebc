"""``encode --engine ray`` on a real local Ray cluster: the same store as a single-process encode,
and a ``kill -9`` mid-run resumes without redoing a finished shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import saetools
from saetools.store.distributed import cpu_actor_threads, plan_shards, record_shard

from .helpers import random_sae, write_jsonl

pytest.importorskip("ray.data", reason="needs the ray extra: pip install 'saetools[ray]'")

WORKERS = 2  # every Ray encode here, so every actor runs with the same thread count


def test_plan_goes_around_shards_done_ahead_and_records_fill_the_gap():
    manifest = {"n_docs": 23, "nnz": 3, "shards": [{"file": "a", "rows": [0, 5], "nnz": 3}]}
    manifest["done_ahead"] = [{"file": "b", "rows": [10, 15], "nnz": 4}]
    plan = plan_shards(manifest, 5)
    assert [(lo, hi) for _, lo, hi in plan] == [(5, 10), (15, 20), (20, 23)]
    assert len({name for name, _, _ in plan}) == 3
    record_shard(manifest, {"file": "c", "rows": [15, 20], "nnz": 1})
    assert [s["rows"] for s in manifest["shards"]] == [[0, 5]] and manifest["nnz"] == 3
    record_shard(manifest, {"file": "d", "rows": [5, 10], "nnz": 2})
    assert [s["rows"] for s in manifest["shards"]] == [[0, 5], [5, 10], [10, 15], [15, 20]]
    assert manifest["nnz"] == 10 and "done_ahead" not in manifest
    assert [(lo, hi) for _, lo, hi in plan_shards(manifest, 5)] == [(20, 23)]


def _same_store(left, right) -> None:
    a, b = saetools.open_store(left), saetools.open_store(right)
    assert a.docs.equals(b.docs)
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(a.matrix, name), getattr(b.matrix, name)), name
    assert np.array_equal(a.spans, b.spans)
    assert a.examples.equals(b.examples)
    assert a.manifest["nnz"] == b.manifest["nnz"] and a.identity == b.identity
    # the reconstruction check sees the first 512 vectors; on Ray only those of the first shard
    assert a.manifest["sae_check"]["fvu"] == pytest.approx(b.manifest["sae_check"]["fvu"], rel=0.05)


def _actor_threads(workers: int) -> int:
    """The torch threads each of ``workers`` CPU actors of a local Ray cluster runs with."""
    from ray._private.utils import get_num_cpus

    return cpu_actor_threads(int(get_num_cpus()), workers)


@pytest.fixture(scope="module")
def job(tmp_path_factory, example_texts):
    """A single-process encode made with the actors' thread count: a CPU matmul splits its work
    by thread, so values agree bit for bit only between runs with the same count."""
    import torch

    folder = tmp_path_factory.mktemp("ray")
    data = write_jsonl(
        folder / "docs.jsonl",
        [{"id": f"d{k}", "text": t[:300]} for k, t in enumerate(example_texts[:26])],
    )
    sae = random_sae(folder / "sae", d_sae=256, k=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(_actor_threads(WORKERS))
    try:
        local = saetools.encode(data, out=folder / "local", sae=sae, shard_docs=6, progress=False)
    finally:
        torch.set_num_threads(threads)
    return folder, data, sae, local.folder


def test_ray_encode_equals_the_single_process_encode(job):
    folder, data, sae, local = job
    saetools.encode(
        data,
        out=folder / "ray",
        sae=sae,
        engine="ray",
        workers=WORKERS,
        shard_docs=6,
        progress=False,
    )
    _same_store(local, folder / "ray")
    shards = saetools.open_store(folder / "ray").manifest["shards"]
    assert [s["rows"] for s in shards] == [[0, 6], [6, 12], [12, 18], [18, 24], [24, 26]]


def test_a_killed_ray_encode_resumes_without_redoing_finished_shards(job):
    folder, data, sae, local = job
    out = folder / "killed"
    command = [
        sys.executable, "-m", "saetools.cli", "encode", str(data), "--out", str(out),
        "--sae", str(sae), "--engine", "ray", "--workers", str(WORKERS),
        "--shard-docs", "2", "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL)
    manifest_path = out / "manifest.json"
    deadline = time.monotonic() + 240
    finished: list = []
    while time.monotonic() < deadline and process.poll() is None:
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except json.JSONDecodeError:  # replaced while being read: read it again
                continue
            finished = manifest["shards"] + manifest.get("done_ahead", [])
            if len(finished) >= 2:
                break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= len(finished) < 13, "the run was not stopped half-way"
    manifest = json.loads(manifest_path.read_text())
    assert not manifest["complete"]
    kept = manifest["shards"] + manifest.get("done_ahead", [])
    stamps = {s["file"]: (out / s["file"]).stat().st_mtime_ns for s in kept}
    saetools.encode(
        data, out=out, sae=sae, engine="ray", workers=WORKERS, shard_docs=2, progress=False
    )
    assert {f: (out / f).stat().st_mtime_ns for f in stamps} == stamps
    _same_store(local, out)
