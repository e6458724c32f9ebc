"""The settings of SAE training (``saetools train``), light to import."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from ..options import cli_meta


@dataclass
class TrainConfig:
    """Settings of ``saetools train``; each field is also a CLI option (``--field-name``)."""

    latents: int = 4608
    """number of SAE latents (d_sae)"""
    k: int = 32
    """active latents per token (TopK/BatchTopK)"""
    architecture: str = dataclasses.field(
        default="topk", metadata=cli_meta(choices=["topk", "batchtopk", "jumprelu", "relu"])
    )
    """SAE type"""
    tied: bool = False
    """tie decoder to encoder (relu only)"""
    epochs: float = 4.0
    """passes over the cached activations"""
    tokens: int | None = None
    """stream this many tokens: read and train buffer by buffer, no activation cache (epochs
    ignored)"""
    batch_size: int = 4096
    """tokens per optimisation step"""
    lr: float | None = None
    """learning rate (default 2e-4/sqrt(latents/2^14))"""
    warmup_steps: int = 200
    """linear learning-rate warm-up"""
    dead_tokens: int = 1_000_000
    """a latent silent this many tokens is dead (AuxK); capped at one epoch"""
    sparsity_coeff: float | None = None
    """L1 (relu) or L0 (jumprelu) weight; default per arch"""
    buffer_tokens: int = 1_000_000
    """activations held in RAM for shuffling (with --tokens: read per buffer)"""
    checkpoint_every: int = 500
    """steps between checkpoints"""
    init: str | None = None
    """continue training this SAE (folder, file or pack name) instead of random weights: its
    weights and input scale are kept, the optimiser and schedule start afresh"""
    seed: int = 0
    """random seed"""
    device: str = "cpu"
    """cpu | cuda | cuda:N | auto"""
    save_dtype: str = dataclasses.field(
        default="float32", metadata=cli_meta(choices=["float32", "bfloat16", "float16"])
    )
    """dtype of the saved weights"""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return asdict(self)
