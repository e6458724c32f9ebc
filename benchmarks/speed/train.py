"""SAE training throughput: saetools' TopK step vs a plain dense PyTorch loop, same data, same run.

    python -m benchmarks.speed --only train [--latents 4608] [--k 32] [--batch 4096] [--steps 30]

The dense baseline is the textbook loop: fp32, full [n, d_sae] activations (top-k scattered into a
dense matrix), dense decoder matmul, autograd through everything. saetools uses a bf16 encoder
matmul, a sparse backward through the selected latents and an embedding_bag decoder.
"""

from __future__ import annotations

import argparse
import time

import torch

from saetools.sae.models import SAEConfig, build_sae


def dense_step(sae, x, k, opt):
    """One naive training step: dense activations and dense autograd, fp32."""
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    values, indices = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, indices, values.clamp_min(0))
    recon = acts @ sae.W_dec + sae.b_dec
    loss = (recon - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()


def sparse_step(sae, x, opt):
    """One saetools training step (TopK fast path, no dead latents)."""
    out = sae.training_forward(x, None)
    opt.zero_grad()
    out.loss.backward()
    sae.project_decoder_grad()
    opt.step()
    sae.normalize_decoder()


def measure(step, batch, steps, warmup=3):
    """Tokens per second over ``steps`` steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    """Print tokens/s for both paths and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--d-in", type=int, default=576)
    parser.add_argument("--latents", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.d_in) * 3
    cfg = SAEConfig("topk", args.d_in, args.latents, args.k)
    dense = build_sae(cfg)
    dense_opt = torch.optim.Adam(dense.parameters(), lr=1e-4)
    fast = build_sae(cfg)
    fast_opt = torch.optim.Adam(fast.parameters(), lr=1e-4)
    dense_tps = measure(lambda: dense_step(dense, x, args.k, dense_opt), args.batch, args.steps)
    fast_tps = measure(lambda: sparse_step(fast, x, fast_opt), args.batch, args.steps)
    print(
        f"SAE training, d_in={args.d_in} latents={args.latents} k={args.k} batch={args.batch} "
        f"threads={torch.get_num_threads()}"
    )
    print(f"  dense fp32 baseline : {dense_tps:10,.0f} tokens/s")
    print(f"  saetools TopK       : {fast_tps:10,.0f} tokens/s")
    print(f"  ratio               : {fast_tps / dense_tps:10.2f}x  (target >= 15,000 tokens/s)")


if __name__ == "__main__":
    main()
