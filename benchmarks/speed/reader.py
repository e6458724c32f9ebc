"""Reader throughput: saetools' HFReader vs a naive pipeline, same documents, same run.

    python -m benchmarks.speed --only reader [--docs 96] [--layer 15]

Naive: the full model forward with ``output_hidden_states=True`` in fp32, batches of 8 documents
in corpus order padded to the longest. saetools: bf16, forward stopped after ``layer``, windows
sorted by length and packed under a token budget. Both count the documents' real tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.speed.naive import naive_batches
from saetools.readers import load_reader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus.jsonl"


def naive_tokens_per_second(reader, texts, layer) -> float:
    """Full fp32 forward with all hidden states, batch 8, padded to the longest."""
    model = reader.model.float()
    tok = reader.tokenizer
    hooks = reader.blocks[layer]._forward_hooks.copy()
    reader.blocks[layer]._forward_hooks.clear()
    n_tokens = 0
    start = time.perf_counter()
    for enc, _ in naive_batches(model, tok, texts):
        n_tokens += int(enc["attention_mask"].sum())
    elapsed = time.perf_counter() - start
    reader.blocks[layer]._forward_hooks.update(hooks)
    return n_tokens / elapsed


def saetools_tokens_per_second(reader, texts) -> float:
    """HFReader.iter_activations over the same texts."""
    start = time.perf_counter()
    n_tokens = sum(item.acts.shape[0] for item in reader.iter_activations(texts))
    return n_tokens / (time.perf_counter() - start)


def main() -> None:
    """Print tokens/s of both paths and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--layer", type=int, default=15)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(EXAMPLES)][: args.docs]
    fast = load_reader(None, args.layer, quiet=True, outlier_ratio=None)
    saetools_tokens_per_second(fast, texts[:8])  # warm-up
    ours = saetools_tokens_per_second(fast, texts)
    naive_reader = load_reader(None, args.layer, dtype="float32", quiet=True)
    naive_tokens_per_second(naive_reader, texts[:8], args.layer)  # warm-up
    naive = naive_tokens_per_second(naive_reader, texts, args.layer)
    from saetools.readers.base import cpu_description

    print(
        f"reader SmolLM2-135M layer {args.layer}, {len(texts)} documents, "
        f"threads={torch.get_num_threads()}; {cpu_description()}"
    )
    print(f"  naive (full fp32 forward, all hidden states, batch 8): {naive:8,.0f} tokens/s")
    dtype = fast.describe()["dtype"]
    print(f"  saetools ({dtype}, stop at layer, length-sorted batches): {ours:8,.0f} tokens/s")
    print(f"  ratio: {ours / naive:.2f}x  (target >= 4x)")


if __name__ == "__main__":
    main()
