"""The naive baseline the benchmarks compare against: a full forward of batches of 8 documents,
padded to the longest, returning every hidden state."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


@torch.inference_mode()
def naive_batches(
    model, tokenizer, texts: Sequence[str], device="cpu", batch: int = 8, max_length: int = 512
) -> Iterator[tuple[dict, tuple]]:
    """Yield ``(encoding, hidden_states)`` per batch of ``batch`` texts in corpus order."""
    for lo in range(0, len(texts), batch):
        enc = tokenizer(
            list(texts[lo : lo + batch]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
        ).to(device)
        out = model(**enc, output_hidden_states=True, use_cache=False)
        yield enc, out.hidden_states
