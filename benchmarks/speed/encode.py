"""End-to-end encoding: saetools' store vs a naive pipeline, same documents, same run.

    python -m benchmarks.speed --only encode [--docs 64]

Naive: full model forward in fp32 with ``output_hidden_states=True``, batches of 8 documents
padded to the longest, a dense SAE pass ([tokens, d_sae] activations), and every token's dense
latent vector stored (float32 .npy). saetools: ``encode`` (auto-dtype reader stopped at the layer,
length-sorted batches, sparse TopK codes, max-pooled CSR shards). Prints documents/s, the ratio,
and bytes per document of each store.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.speed.naive import naive_batches
from saetools.api import encode
from saetools.readers import load_reader
from saetools.sae.packs import resolve_sae

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus.jsonl"


@torch.no_grad()
def naive(texts, sae, folder: Path) -> float:
    """Documents/s of the naive pipeline; writes per-token dense vectors under ``folder``."""
    reader = load_reader(
        None, sae.cfg.reader["layer"], dtype="float32", quiet=True, outlier_ratio=None
    )
    layer = reader.layer
    hooks = reader.blocks[layer]._forward_hooks.copy()
    reader.blocks[layer]._forward_hooks.clear()
    tok = reader.tokenizer
    start = time.perf_counter()
    for batch, (enc, hidden) in enumerate(naive_batches(reader.model, tok, texts)):
        states = hidden[layer + 1]
        for row in range(states.shape[0]):
            x = states[row][enc["attention_mask"][row].bool()]
            pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
            values, indices = pre.topk(sae.cfg.k, dim=-1)
            dense = torch.zeros_like(pre).scatter_(-1, indices, values.clamp_min(0))
            np.save(folder / f"doc-{batch * 8 + row}.npy", dense.numpy())
    elapsed = time.perf_counter() - start
    reader.blocks[layer]._forward_hooks.update(hooks)
    return len(texts) / elapsed


def main() -> None:
    """Print both throughputs and store sizes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=64)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(EXAMPLES)][: args.docs]
    sae, _ = resolve_sae(None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reader = load_reader(None, sae.cfg.reader["layer"], quiet=True)
        encode(texts[:8], tmp / "warm", reader=reader, progress=False)
        start = time.perf_counter()
        store = encode(texts, tmp / "store", reader=reader, progress=False)
        ours = len(texts) / (time.perf_counter() - start)
        shard_bytes = sum(
            (tmp / "store" / s["file"]).stat().st_size for s in store.manifest["shards"]
        )
        (tmp / "naive").mkdir()
        base = naive(texts, sae.float(), tmp / "naive")
        naive_bytes = sum(p.stat().st_size for p in (tmp / "naive").iterdir())
        per_doc = store.matrix.nnz / len(texts)
    from saetools.readers.base import cpu_description

    print(
        f"encode {len(texts)} example documents, default reader ({reader.describe()['dtype']}) "
        f"+ shipped SAE, threads={torch.get_num_threads()}; {cpu_description()}"
    )
    print(
        f"  naive (fp32 full forward, dense SAE, per-token store): {base:6.2f} docs/s, "
        f"{naive_bytes / len(texts) / 1024:,.0f} KB/doc"
    )
    print(
        f"  saetools encode:                                       {ours:6.2f} docs/s, "
        f"{shard_bytes / len(texts) / 1024:,.1f} KB/doc ({per_doc:.0f} latents/doc; "
        f"vectors alone {per_doc * 4 / 1024:.1f} KB: uint16 id + float16 value)"
    )
    print(f"  ratio: {ours / base:.1f}x faster, {naive_bytes / shard_bytes:.0f}x smaller")


if __name__ == "__main__":
    main()
