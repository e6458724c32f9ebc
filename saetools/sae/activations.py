"""An on-disk cache of reader activations, and shuffled batches drawn from it in bounded RAM.

Harvesting runs the reader once over a corpus and writes bf16 safetensors shards; an index lists
finished shards, so an interrupted harvest resumes after the last one. Training reads the shards
epoch after epoch: shards are visited in a seeded random order, loaded into a buffer of at most
``buffer_tokens`` rows, and shuffled inside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

INDEX = "index.json"


def corpus_fingerprint(texts: Sequence[str]) -> str:
    """Content hash of a list of texts."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class ActivationCache:
    """Shards of token activations ``[n_tokens, d]`` (bf16) in one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.index = json.loads((self.folder / INDEX).read_text())

    @property
    def shards(self) -> list[dict]:
        """Finished shards: ``{"file", "tokens", "docs": [lo, hi]}``."""
        return self.index["shards"]

    @property
    def n_tokens(self) -> int:
        """Total cached tokens."""
        return sum(s["tokens"] for s in self.shards)

    @property
    def d_model(self) -> int:
        """Width of the cached activations."""
        return int(self.index["d_model"])

    def load_shard(self, i: int) -> torch.Tensor:
        """Activations of shard ``i``."""
        return load_file(str(self.folder / self.shards[i]["file"]))["acts"]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """Up to ``n`` random rows (float32) drawn from the first shards, for initialisation."""
        rows, total = [], 0
        for i in range(len(self.shards)):
            rows.append(self.load_shard(i))
            total += rows[-1].shape[0]
            if total >= 4 * n:
                break
        data = torch.cat(rows).float()
        g = torch.Generator().manual_seed(seed)
        return data[torch.randperm(data.shape[0], generator=g)[:n]]

    def iter_batches(
        self, epoch: int, batch_size: int, buffer_tokens: int, seed: int
    ) -> Iterator[torch.Tensor]:
        """Shuffled batches of one epoch (the last partial batch is dropped)."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.shards), generator=g).tolist()
        carry = None
        pending: list[torch.Tensor] = []
        pending_rows = 0
        for pos, shard in enumerate(order):
            pending.append(self.load_shard(shard))
            pending_rows += pending[-1].shape[0]
            if pending_rows < buffer_tokens and pos < len(order) - 1:
                continue
            buffer = torch.cat(([carry] if carry is not None else []) + pending)
            pending, pending_rows = [], 0
            buffer = buffer[torch.randperm(buffer.shape[0], generator=g)]
            full = buffer.shape[0] // batch_size * batch_size
            for lo in range(0, full, batch_size):
                yield buffer[lo : lo + batch_size]
            carry = buffer[full:] if full < buffer.shape[0] else None

    def steps_per_epoch(self, batch_size: int) -> int:
        """Number of full batches an epoch yields (partial batches are carried, then dropped)."""
        return self.n_tokens // batch_size


def harvest(
    reader,
    texts: Sequence[str],
    folder: str | Path,
    shard_tokens: int = 65536,
    progress: bool = False,
) -> ActivationCache:
    """Run ``reader`` over ``texts`` and cache the token activations under ``folder``.

    Resumes an interrupted harvest of the same corpus and reader; a cache of another corpus or
    reader in the same folder is replaced.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = {"corpus": corpus_fingerprint(texts), "reader": reader.describe()}
    index_path = folder / INDEX
    index = json.loads(index_path.read_text()) if index_path.exists() else None
    if index is None or index.get("key") != key:
        for stale in folder.glob("shard-*.safetensors"):
            stale.unlink()
        index = {"key": key, "d_model": reader.d_model, "n_docs": len(texts), "shards": []}
    start_doc = index["shards"][-1]["docs"][1] if index["shards"] else 0
    if index.get("complete"):
        return ActivationCache(folder)
    bar = tqdm(
        total=len(texts), initial=start_doc, desc="activations", unit="doc", disable=not progress
    )
    pending: list[torch.Tensor] = []
    pending_tokens, lo = 0, start_doc

    def flush(hi: int) -> None:
        nonlocal pending, pending_tokens, lo
        if not pending:
            return
        name = f"shard-{len(index['shards']):05d}.safetensors"
        tmp = folder / (name + ".tmp")
        save_file({"acts": torch.cat(pending).to(torch.bfloat16).contiguous()}, str(tmp))
        os.replace(tmp, folder / name)
        index["shards"].append({"file": name, "tokens": pending_tokens, "docs": [lo, hi]})
        _write_index(index_path, index)
        pending, pending_tokens, lo = [], 0, hi

    doc = start_doc
    for item in reader.iter_activations(texts[start_doc:]):
        pending.append(item.acts.to("cpu"))
        pending_tokens += item.acts.shape[0]
        doc += 1
        bar.update(1)
        if pending_tokens >= shard_tokens:
            flush(doc)
    flush(doc)
    bar.close()
    index["complete"] = True
    _write_index(index_path, index)
    return ActivationCache(folder)


def _write_index(path: Path, index: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, path)


def cache_from_tensor(
    acts: torch.Tensor, folder: str | Path, shard_tokens: int = 65536
) -> ActivationCache:
    """Write an in-memory activation matrix ``[n, d]`` as a cache (for arrays and tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("shard-*.safetensors"):
        stale.unlink()
    index = {"key": {"tensor": True}, "d_model": int(acts.shape[1]), "shards": [], "complete": True}
    for i, lo in enumerate(range(0, acts.shape[0], shard_tokens)):
        part = acts[lo : lo + shard_tokens].to(torch.bfloat16).contiguous()
        name = f"shard-{i:05d}.safetensors"
        save_file({"acts": part}, str(folder / name))
        index["shards"].append(
            {"file": name, "tokens": part.shape[0], "docs": [lo, lo + part.shape[0]]}
        )
    _write_index(folder / INDEX, index)
    return ActivationCache(folder)
