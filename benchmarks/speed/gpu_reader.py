"""GPU reader throughput against a naive forward, and the share of the matmul peak it reaches.

    python -m benchmarks.speed --only gpu_reader                  # on a CUDA machine
    python -m benchmarks.speed --only gpu_reader --small          # any machine, small shapes
    python -m benchmarks.speed --only gpu_reader --json out.json  # figures also as JSON

1. SmolLM2-135M (the embedded weights) at layer 15 on example documents repeated to ``--docs``:
   tokens/s of the reader alone (bf16, token budget from free memory, forward stopped after the
   layer, windows packed by length, tokenisation on a worker thread) and of the encode path
   (reader, the shipped SAE and max-pooling on the device, sparse codes copied back), against
   the naive full forward (fp32, every hidden state, batches of 8 in corpus order) in the same
   run. Goal on an H100-class GPU: >= 10x and >= 150k tokens/s.
2. A Llama-3.1-8B-shaped reader with random bf16 weights truncated at layer 19 (20 blocks built,
   the hook on the last) reading 511-token windows: tokens/s, matmul FLOPs per token (weights
   and causal attention) and their share of the bf16 peak measured in the same run by an
   8192-cubed matmul. Goal: >= 50%.
3. ``device_map="auto"``: the reader placed by accelerate gives the activations of a reader
   placed whole (one GPU: the code path; several: the split across them).

``--small`` scales shapes and sizes down so the script runs in a minute on a CPU (its figures
mean nothing there; it checks the script before GPU time is spent).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.speed.naive import naive_batches

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus.jsonl"

LLAMA_8B = {
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
}
"""Llama-3.1-8B's shape (its 32 blocks are cut to ``layer + 1``)."""

SMALL_LLAMA = {
    "vocab_size": 49152,
    "hidden_size": 256,
    "intermediate_size": 896,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
"""A shape for ``--small`` runs."""


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work) -> tuple[float, object]:
    """Seconds ``work()`` takes, with the device synchronised on both sides, and its result."""
    sync(device)
    start = time.perf_counter()
    result = work()
    sync(device)
    return time.perf_counter() - start, result


def example_corpus(n_docs: int) -> list[str]:
    """The example corpus repeated to ``n_docs`` documents (each copy numbered, so no two
    documents are equal)."""
    base = [json.loads(line)["text"] for line in open(EXAMPLES, encoding="utf-8")]
    return [f"{base[i % len(base)]} ({i // len(base)})" for i in range(n_docs)]


def long_documents(n_docs: int, tokens: int, tokenizer) -> list[str]:
    """``n_docs`` texts of about ``tokens`` tokens each, made of example documents."""
    base = [json.loads(line)["text"] for line in open(EXAMPLES, encoding="utf-8")]
    docs, current, size, i = [], [], 0, 0
    while len(docs) < n_docs:
        text = base[i % len(base)]
        current.append(text)
        size += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        i += 1
        if size >= tokens:
            docs.append("\n\n".join(current))
            current, size = [], 0
    return docs


def matmul_peak(device: torch.device, size: int) -> float:
    """FLOP/s of a bf16 (CPU: fp32) ``size``-cubed matmul, the best of five after a warm-up."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = min(timed(device, lambda: a @ b)[0] for _ in range(5))
    return 2 * size**3 / best


def llama_flops_per_token(shape: dict, layers: int, window: int) -> float:
    """Matmul FLOPs per token of ``layers`` Llama blocks: 2 per weight, plus causal attention
    (scores and values over on average half the window: 2 * hidden * window per block)."""
    d, inter = shape["hidden_size"], shape["intermediate_size"]
    kv = d * shape["num_key_value_heads"] // shape["num_attention_heads"]
    weights = 2 * d * d + 2 * d * kv + 3 * d * inter
    return layers * (2 * weights + 2 * d * window)


def random_llama(shape: dict, layers: int, device: torch.device, dtype: torch.dtype):
    """A LlamaForCausalLM of ``shape`` with ``layers`` blocks and random weights, built on
    ``device`` in ``dtype``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        **shape,
        num_hidden_layers=layers,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def smollm2_part(device: torch.device, n_docs: int, naive_docs: int) -> dict:
    """Tokens/s of the reader, the encode path and the naive forward on SmolLM2-135M."""
    from saetools.readers import load_reader
    from saetools.sae.io import load_sae
    from saetools.sae.packs import default_sae_path
    from saetools.store.pooling import pooled_matrix

    texts = example_corpus(n_docs)
    reader = load_reader(None, 15, device=str(device), quiet=True)
    sae = load_sae(default_sae_path())
    list(reader.iter_activations(texts[:256]))  # warm-up: first shapes are slow on a GPU
    seconds, tokens = timed(
        device, lambda: sum(item.acts.shape[0] for item in reader.iter_activations(texts))
    )
    counted = []

    def counting(items):
        for item in items:
            counted.append(item.acts.shape[0])
            yield item

    encode_seconds, matrix = timed(
        device, lambda: pooled_matrix(counting(reader.iter_activations(texts)), sae, reader=reader)
    )
    naive_model = load_reader(None, 15, device=str(device), dtype="float32", quiet=True).model
    naive_texts = texts[:naive_docs]
    list(naive_batches(naive_model, reader.tokenizer, naive_texts[:16], device=device))

    def naive_run() -> int:
        batches = naive_batches(naive_model, reader.tokenizer, naive_texts, device=device)
        return sum(int(enc["attention_mask"].sum()) for enc, _ in batches)

    naive_seconds, naive_tokens = timed(device, naive_run)
    figures = {
        "docs": n_docs,
        "tokens": tokens,
        "token_budget": reader.token_budget,
        "dtype": reader.describe()["dtype"],
        "reader_tokens_per_s": tokens / seconds,
        "encode_tokens_per_s": sum(counted) / encode_seconds,
        "encode_nonzeros_per_doc": matrix.nnz / matrix.shape[0],
        "naive_docs": naive_docs,
        "naive_tokens_per_s": naive_tokens / naive_seconds,
    }
    figures["reader_ratio"] = figures["reader_tokens_per_s"] / figures["naive_tokens_per_s"]
    figures["encode_ratio"] = figures["encode_tokens_per_s"] / figures["naive_tokens_per_s"]
    return figures


def llama_part(device: torch.device, shape: dict, layer: int, n_docs: int, peak_size: int) -> dict:
    """Tokens/s and matmul-peak share of a random Llama reader cut after ``layer``."""
    from transformers import AutoTokenizer

    from saetools.readers import HFReader
    from saetools.readers.defaults import convert_gguf, smollm2_gguf_path

    tokenizer = AutoTokenizer.from_pretrained(convert_gguf(smollm2_gguf_path(), quiet=True))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = random_llama(shape, layer + 1, device, dtype)
    reader = HFReader(
        model, layer, tokenizer=tokenizer, device=str(device), dtype=dtype, outlier_ratio=None
    )
    texts = long_documents(n_docs, 4 * reader.window, tokenizer)
    list(reader.iter_activations(texts[:2]))  # warm-up
    seconds, tokens = timed(
        device, lambda: sum(item.acts.shape[0] for item in reader.iter_activations(texts))
    )
    peak = matmul_peak(device, peak_size)
    per_token = llama_flops_per_token(shape, layer + 1, reader.window)
    rate = tokens / seconds
    return {
        "layers_run": layer + 1,
        "tokens": tokens,
        "token_budget": reader.token_budget,
        "tokens_per_s": rate,
        "flops_per_token": per_token,
        "achieved_tflops": rate * per_token / 1e12,
        "matmul_peak_tflops": peak / 1e12,
        "share_of_peak": rate * per_token / peak,
    }


def device_map_part(device: torch.device, n_docs: int) -> dict:
    """Largest difference between a reader placed by accelerate and one placed whole."""
    from saetools.readers import load_reader

    texts = example_corpus(n_docs)
    whole = load_reader(None, 15, device=str(device), dtype="float32", quiet=True)
    spread = load_reader(None, 15, dtype="float32", quiet=True, device_map="auto")
    worst = 0.0
    for a, b in zip(spread.iter_activations(texts), whole.iter_activations(texts), strict=True):
        worst = max(worst, float((a.acts.float().cpu() - b.acts.float().cpu()).abs().max()))
    devices = sorted({str(p.device) for p in spread.model.parameters()})
    return {"devices": devices, "max_abs_difference": worst, "docs": n_docs}


def main(argv: list[str] | None = None) -> dict:
    """Run the three parts, print their figures, and return them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="small shapes and sizes (CPU check)")
    parser.add_argument("--docs", type=int, default=None, help="SmolLM2 documents")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    small = args.small or device.type != "cuda"
    n_docs = args.docs or (48 if small else 20_000)
    figures = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    print(f"device: {figures['device']}{' (small shapes)' if small else ''}", flush=True)

    smol = smollm2_part(device, n_docs, min(n_docs, 16 if small else 2_000))
    figures["smollm2_135m_layer15"] = smol
    print(
        f"SmolLM2-135M layer 15, {smol['docs']:,} docs, {smol['dtype']}, token budget "
        f"{smol['token_budget']:,}: reader {smol['reader_tokens_per_s']:,.0f} tokens/s "
        f"({smol['reader_ratio']:.1f}x naive), encode with SAE {smol['encode_tokens_per_s']:,.0f} "
        f"tokens/s ({smol['encode_ratio']:.1f}x); naive fp32 full forward "
        f"{smol['naive_tokens_per_s']:,.0f} tokens/s  (goal >= 10x, >= 150k tokens/s)",
        flush=True,
    )

    shape, layer = (SMALL_LLAMA, 3) if small else (LLAMA_8B, 19)
    big = llama_part(device, shape, layer, 4 if small else 96, 512 if small else 8192)
    figures["llama_8b_shape_layer19" if not small else "small_llama"] = big
    print(
        f"Llama{'-3.1-8B' if not small else ' (small)'}-shaped, random weights, {big['layers_run']}"
        f" blocks: {big['tokens_per_s']:,.0f} tokens/s, {big['achieved_tflops']:,.1f} TFLOP/s of "
        f"a {big['matmul_peak_tflops']:,.1f} TFLOP/s matmul peak = {big['share_of_peak']:.0%}"
        "  (goal >= 50%)",
        flush=True,
    )

    placed = device_map_part(device, 8 if small else 64)
    figures["device_map_auto"] = placed
    print(
        f"device_map='auto' on {', '.join(placed['devices'])}: max |difference| against one "
        f"device {placed['max_abs_difference']:.2e} over {placed['docs']} docs",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
