"""Encoding on Ray: the shards of a store are encoded by Ray Data actors, each holding a reader
and the SAE, and written straight into the store folder (docs/scale.md).

The driver writes ``docs.parquet`` and the manifest as a single-process encode does, plans the
missing row ranges (``shard_docs`` documents each) and streams them through
``map_batches(ShardEncoder, concurrency=workers)``. A shard is written by its actor under a
temporary name and renamed; the driver lists it in the manifest as soon as its result arrives:
in ``shards`` when every row before it is done, else in ``done_ahead`` until the gap is filled.
A run killed at any point (``kill -9`` included) therefore never redoes a finished shard, and
the result equals a single-process encode of the same job: the same rows, values and spans (the
reader batches documents in chunks counted from document 0 whichever shard it reads).

Every worker must see the store folder (one machine, or a shared filesystem on a cluster) and
the SAE folder; the reader is rebuilt on each actor from its description.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import SaetoolsError
from .manifest import MANIFEST, write_json_atomic

RAY_MISSING = "the ray engine needs Ray: pip install 'saetools[ray]'"


def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SaetoolsError(RAY_MISSING) from None
    return ray


class ShardEncoder:
    """A Ray Data actor: loads the reader and the SAE once, then encodes whole shards."""

    def __init__(
        self,
        folder: str,
        reader_spec: dict,
        sae_path: str,
        min_contribution: float,
        value_dtype: str,
        device: str,
        threads: int,
    ) -> None:
        import torch

        from ..readers.defaults import reader_from_description
        from ..sae.io import load_sae
        from .docs_table import DocColumn

        torch.set_num_threads(max(threads, 1))
        self.folder = Path(folder)
        self.reader = reader_from_description(reader_spec, device=device, quiet=True)
        self.sae = load_sae(sae_path)
        self.min_contribution = min_contribution
        self.dtype = {"float16": np.float16, "float32": np.float32}[value_dtype]
        self.texts = DocColumn(self.folder / "docs.parquet")  # read by row group

    def __call__(self, batch: dict) -> dict:
        """Encode and write the shards of a batch; return their files, rows and counts."""
        from ..sae.check import ReconstructionCheck
        from .writer import encode_shard

        out: dict[str, list] = {"file": [], "lo": [], "hi": [], "nnz": [], "cut": [], "check": []}
        for name, lo, hi in zip(batch["file"], batch["lo"], batch["hi"], strict=True):
            lo, hi = int(lo), int(hi)
            check = ReconstructionCheck(self.sae) if lo == 0 else None
            cut_before = getattr(self.reader, "cut_docs", 0)
            nnz = encode_shard(
                self.folder / str(name),
                self.reader,
                self.sae,
                self.texts,
                lo,
                hi,
                self.min_contribution,
                self.dtype,
                check,
            )
            result = check.finish() if check is not None else None
            out["file"].append(str(name))
            out["lo"].append(lo)
            out["hi"].append(hi)
            out["nnz"].append(nnz)
            out["cut"].append(getattr(self.reader, "cut_docs", 0) - cut_before)
            out["check"].append(json.dumps(result))
        return {key: np.asarray(values) for key, values in out.items()}


def plan_shards(manifest: dict, shard_docs: int) -> list[tuple[str, int, int]]:
    """``(file, lo, hi)`` of every shard still to encode: ranges of ``shard_docs`` rows after
    the listed shards, around those already done ahead."""
    n = int(manifest["n_docs"])
    start = manifest["shards"][-1]["rows"][1] if manifest["shards"] else 0
    ahead = sorted(tuple(s["rows"]) for s in manifest.get("done_ahead", []))
    plan, pos = [], start
    while pos < n:
        block = next(((a, b) for a, b in ahead if a >= pos), None)
        if block is not None and block[0] == pos:
            pos = block[1]
            continue
        hi = min(pos + shard_docs, n, block[0] if block else n)
        plan.append((f"acts/rows-{pos:010d}-{hi:010d}.safetensors", pos, hi))
        pos = hi
    return plan


def record_shard(manifest: dict, shard: dict) -> None:
    """Add a finished shard: to ``shards`` with every ``done_ahead`` shard that then follows
    on, or to ``done_ahead`` while rows before it are missing (``nnz`` counts listed shards)."""
    manifest.setdefault("done_ahead", []).append(shard)
    manifest["done_ahead"].sort(key=lambda s: s["rows"][0])
    end = manifest["shards"][-1]["rows"][1] if manifest["shards"] else 0
    while manifest["done_ahead"] and manifest["done_ahead"][0]["rows"][0] == end:
        moved = manifest["done_ahead"].pop(0)
        manifest["shards"].append(moved)
        manifest["nnz"] += int(moved["nnz"])
        end = moved["rows"][1]
    if not manifest["done_ahead"]:
        del manifest["done_ahead"]


def encode_shards_on_ray(
    manifest: dict,
    folder: Path,
    sae,
    *,
    sae_path: str | Path | None,
    shard_docs: int,
    min_contribution: float,
    value_dtype: str,
    progress: bool,
    address: str | None = None,
    workers: int | None = None,
) -> int:
    """Encode the shards the manifest of the store at ``folder`` still lacks, on Ray (see the
    module docstring), recording each; returns how many documents the readers cut.
    ``sae_path``: the SAE folder the workers load. ``address``: an existing cluster (``auto`` or
    ``ray://host:port``); without it a local Ray is started. ``workers``: actors (default: one
    per GPU, else one per CPU of the cluster)."""
    ray = import_ray()
    if sae_path is None:
        raise SaetoolsError("the ray engine needs an SAE saved in a folder (--sae PATH)")
    plan = plan_shards(manifest, shard_docs)
    if not plan:
        return 0
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    try:
        return _run_plan(
            ray,
            plan,
            manifest,
            Path(folder).resolve(),
            sae,
            sae_path,
            min_contribution,
            value_dtype,
            workers,
            progress,
        )
    finally:
        if started_here:
            ray.shutdown()


def cpu_actor_threads(cpus: int, workers: int) -> int:
    """CPUs, and torch threads, of each of ``workers`` actors sharing ``cpus``."""
    return max(cpus // workers, 1)


def _run_plan(
    ray, plan, manifest, folder, sae, sae_path, min_contribution, value_dtype, workers, progress
) -> int:
    """Stream the planned shards through the actors, recording each as it finishes; returns
    how many documents the readers cut."""
    from tqdm.auto import tqdm

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(int(resources.get("CPU", 1)), 1)
    workers = workers or (gpus or cpus)
    workers = max(1, min(workers, len(plan)))
    per_actor = {"num_gpus": 1} if gpus else {"num_cpus": cpu_actor_threads(cpus, workers)}
    threads = cpu_actor_threads(cpus, workers) if not gpus else 2
    items = [{"file": name, "lo": lo, "hi": hi} for name, lo, hi in plan]
    data = ray.data.from_items(items, override_num_blocks=len(items))
    results = data.map_batches(
        ShardEncoder,
        fn_constructor_kwargs={
            "folder": str(folder),
            "reader_spec": manifest["reader"],
            "sae_path": str(Path(sae_path).resolve()),
            "min_contribution": float(min_contribution),
            "value_dtype": value_dtype,
            "device": "cuda" if gpus else "cpu",
            "threads": threads,
        },
        batch_size=1,
        concurrency=workers,
        **per_actor,
    )
    bar = tqdm(
        total=len(plan),
        desc=f"encoding on ray ({workers} workers)",
        unit="shard",
        disable=not progress,
    )
    cut = 0
    for row in results.iter_rows():
        shard = {
            "file": str(row["file"]),
            "rows": [int(row["lo"]), int(row["hi"])],
            "nnz": int(row["nnz"]),
        }
        record_shard(manifest, shard)
        check = json.loads(str(row["check"]))
        if check is not None and "sae_check" not in manifest:
            from ..sae.check import warn_if_poor

            manifest["sae_check"] = check
            warn_if_poor(check, manifest["reader"], sae.cfg.reader)
        cut += int(row["cut"])
        write_json_atomic(folder / MANIFEST, manifest)
        bar.update(1)
    bar.close()
    if manifest.get("done_ahead") or manifest["shards"][-1]["rows"][1] != manifest["n_docs"]:
        print(f"ray encode stopped early: {folder} is incomplete; run it again", file=sys.stderr)
        raise SaetoolsError(f"{folder}: some shards were not encoded; run the command again")
    return cut
