"""GPU checks: the reader hook and SAE training on CUDA, with throughput figures.

    python -m pytest -m gpu tests/test_gpu.py -s     # on a machine with CUDA

Skipped without CUDA (and excluded from the default run by the ``gpu`` marker).

Uses a randomly initialised Llama with SmolLM2-135M's shape (30 blocks, width 576) and its
tokenizer, so nothing large has to travel to the GPU machine. Prints pass/fail lines and figures.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import torch

from benchmarks.speed.naive import naive_batches

DEVICE = "cuda"
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def sync() -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def smollm2_shaped_model():
    """A random LlamaForCausalLM with SmolLM2-135M's configuration."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg)


def check_reader(tokenizer_dir: str, texts: list[str]) -> None:
    """Hook equality on CUDA, early stop, and tokens/s vs a naive full forward."""
    from transformers import AutoTokenizer

    from saetools.readers import HFReader

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    exact = HFReader(
        smollm2_shaped_model(),
        15,
        tokenizer=tok,
        dtype="float32",
        device=DEVICE,
        outlier_ratio=None,
    )
    ids, _ = exact.tokenize(texts[0])
    window = [exact.sink_id] + ids
    hooked = exact.forward_windows([window])[0]
    hooks = exact.blocks[15]._forward_hooks.copy()
    exact.blocks[15]._forward_hooks.clear()
    with torch.inference_mode():
        full = exact.model(
            input_ids=torch.tensor([window], device=DEVICE),
            output_hidden_states=True,
            use_cache=False,
        )
    exact.blocks[15]._forward_hooks.update(hooks)
    diff = (hooked - full.hidden_states[16][0]).abs().max().item()
    print(f"{DEVICE} hook vs hidden_states[16]: max diff {diff:.2e}")
    assert diff < 1e-4

    calls = [0] * 30
    handles = [
        b.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, b in enumerate(exact.blocks)
    ]
    list(exact.iter_activations(texts[:4]))
    for h in handles:
        h.remove()
    above = sum(calls[16:])
    assert above == 0, f"blocks above 15 ran {above} times on {DEVICE}"

    fast = HFReader(smollm2_shaped_model(), 15, tokenizer=tok, device=DEVICE, token_budget=65536)
    list(fast.iter_activations(texts[:64]))  # warm-up: first shapes are slow on a GPU
    sync()
    start = time.perf_counter()
    n = sum(item.acts.shape[0] for item in fast.iter_activations(texts))
    sync()
    ours = n / (time.perf_counter() - start)
    naive_model = smollm2_shaped_model().to(DEVICE).eval()
    start = time.perf_counter()
    count = 0
    for enc, _ in naive_batches(naive_model, tok, texts, device=DEVICE):
        count += int(enc["attention_mask"].sum())
    sync()
    naive = count / (time.perf_counter() - start)
    print(
        f"reader on {DEVICE}: saetools {fast.describe()['dtype']} {ours:,.0f} tokens/s; naive "
        f"fp32 batch 8 {naive:,.0f} tokens/s; ratio {ours / naive:.1f}x"
    )


def check_training() -> None:
    """Dictionary recovery and TopK training throughput on CUDA."""
    from saetools.sae.activations import cache_from_tensor
    from saetools.sae.models import SAEConfig, build_sae
    from saetools.sae.train import TrainConfig, Trainer

    from .helpers import synthetic_dictionary

    x, dictionary = synthetic_dictionary(60_000)
    with tempfile.TemporaryDirectory() as tmp:
        cache = cache_from_tensor(x, Path(tmp) / "cache")
        cfg = TrainConfig(
            latents=384,
            k=4,
            epochs=5,
            batch_size=1024,
            warmup_steps=20,
            dead_tokens=20_000,
            device=DEVICE,
        )
        result = Trainer(cfg, cache, Path(tmp) / "out", progress=False).train()
    learned = result.sae.W_dec.detach() / result.sae.W_dec.detach().norm(dim=-1, keepdim=True)
    matched = float(((dictionary @ learned.T).max(dim=1).values >= 0.9).float().mean())
    print(f"{DEVICE} training recovers dictionary: {matched:.1%} matched, FVU {result.fvu:.3f}")
    assert matched >= 0.9

    sae = build_sae(SAEConfig("topk", 576, 4608, 32)).to(DEVICE)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    batch = torch.randn(16384 if DEVICE == "cuda" else 2048, 576, device=DEVICE)

    def step():
        out = sae.training_forward(batch, None)
        opt.zero_grad()
        out.loss.backward()
        sae.project_decoder_grad()
        opt.step()
        sae.normalize_decoder()

    for _ in range(3):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(20):
        step()
    sync()
    print(
        f"SAE training on {DEVICE} (576 -> 4608, k 32, batch {batch.shape[0]}): "
        f"{20 * batch.shape[0] / (time.perf_counter() - start):,.0f} tokens/s"
    )


def example_texts(n: int = 400) -> list[str]:
    """The first ``n`` documents of the example corpus."""
    import json

    from .conftest import ROOT

    with open(ROOT / "examples" / "corpus.jsonl") as fh:
        return [json.loads(line)["text"] for line in fh][:n]


def test_reader_on_gpu() -> None:
    """The hook equals hidden_states on CUDA, stops early, and outpaces a naive forward."""
    from saetools.readers.defaults import convert_gguf, smollm2_gguf_path

    check_reader(str(convert_gguf(smollm2_gguf_path(), quiet=True)), example_texts())


def test_training_on_gpu() -> None:
    """Dictionary recovery and training throughput on CUDA."""
    check_training()


def check_sae_on_reader_device(tokenizer_dir: str, texts: list[str]) -> None:
    """The SAE runs where the reader is (CUDA, the reader's dtype): pooled vectors agree with a
    CPU fp32 run, and a Goodfire-sized ReLU SAE encodes at GPU speed."""
    import copy

    from transformers import AutoTokenizer

    from saetools.readers import HFReader
    from saetools.sae.models import SAEConfig, build_sae
    from saetools.store.pooling import encode_part, pooled_matrix, sae_for_reader

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = smollm2_shaped_model()
    torch.manual_seed(1)
    sae = build_sae(SAEConfig("topk", 576, 4608, 32))
    gpu_reader = HFReader(copy.deepcopy(model), 15, tokenizer=tok, device=DEVICE)
    cpu_reader = HFReader(model, 15, tokenizer=tok, device="cpu", dtype="float32")
    placed = sae_for_reader(sae, gpu_reader)
    assert placed.W_enc.device.type == "cuda" and placed.W_enc.dtype == gpu_reader.dtype
    assert sae.W_enc.device.type == "cpu"  # the caller's SAE is left where it was
    on_gpu = pooled_matrix(gpu_reader.iter_activations(texts[:32]), sae, reader=gpu_reader)
    on_cpu = pooled_matrix(cpu_reader.iter_activations(texts[:32]), sae, reader=cpu_reader)
    a, b = on_gpu.toarray() > 0, on_cpu.toarray() > 0
    agreement = (a & b).sum() / max((a | b).sum(), 1)
    print(f"pooled latents, {gpu_reader.dtype} on {DEVICE} vs fp32 on CPU: Jaccard {agreement:.3f}")
    assert agreement > 0.8

    big = build_sae(SAEConfig("relu", 4096, 65536, None)).to(DEVICE, torch.bfloat16)
    x = torch.randn(8192, 4096, device=DEVICE, dtype=torch.bfloat16)
    encode_part(big, x)
    sync()
    start = time.perf_counter()
    for _ in range(5):
        encode_part(big, x)
    sync()
    rate = 5 * x.shape[0] / (time.perf_counter() - start)
    print(f"ReLU SAE 4096 -> 65536 encode on {DEVICE} bf16: {rate:,.0f} tokens/s")


def test_sae_runs_on_the_readers_device() -> None:
    """Pooled vectors from an SAE on CUDA match a CPU run; encode throughput of a large SAE."""
    from saetools.readers.defaults import convert_gguf, smollm2_gguf_path

    check_sae_on_reader_device(str(convert_gguf(smollm2_gguf_path(), quiet=True)), example_texts())
