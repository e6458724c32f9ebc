"""Sparse autoencoder architectures behind one interface.

Every SAE maps ``x [n, d_in]`` to sparse codes (``values``/``indices`` of shape ``[n, k]``, zero
values where a row has fewer active latents) and decodes them with ``embedding_bag`` so the cost
is O(k * d_in) per token rather than O(d_sae * d_in)::

    pre  = (x - b_dec) @ W_enc + b_enc          # b_dec subtracted when apply_b_dec_to_input
    f    = activation(pre)                       # topk / jumprelu / relu
    x^   = f @ W_dec + b_dec

Architectures register themselves in :data:`ARCHITECTURES` under their name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SaetoolsError

ARCHITECTURES: dict[str, type[SAE]] = {}


def register(cls: type[SAE]) -> type[SAE]:
    """Class decorator adding an SAE architecture to the registry."""
    ARCHITECTURES[cls.architecture] = cls
    return cls


@dataclass
class SAEConfig:
    """Shape and behaviour of an SAE.

    ``k`` is the number of active latents per token (TopK) or per token on average (BatchTopK);
    ``tied`` ties the decoder to the encoder's transpose (ReLU only); ``reader`` records what
    produced the activations (``name``, ``layer``, ``site``: ``Reader.describe()``);
    ``input_norm`` rescales each input vector before encoding and the reconstruction back
    (:data:`INPUT_NORMS`; fixed scale factors are folded into the weights when loading);
    ``extra`` holds provenance such as training statistics.
    """

    architecture: str = "topk"
    d_in: int = 576
    d_sae: int = 4608
    k: int | None = 32
    apply_b_dec_to_input: bool = True
    tied: bool = False
    reader: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    input_norm: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return asdict(self)


INPUT_NORMS = ("none", "constant_norm_rescale", "layer_norm")
"""Per-vector input normalisations (SAELens' ``normalize_activations`` modes that act at run
time): ``constant_norm_rescale`` scales each vector to norm sqrt(d_in); ``layer_norm`` subtracts
its mean and divides by its standard deviation."""


class SparseCodes(NamedTuple):
    """Sparse latent activations: ``values[i, j]`` of latent ``indices[i, j]`` for token ``i``."""

    values: Tensor
    indices: Tensor

    def to_dense(self, d_sae: int) -> Tensor:
        """Dense ``[n, d_sae]`` activations."""
        dense = self.values.new_zeros(self.values.shape[0], d_sae)
        return dense.scatter_add_(1, self.indices, self.values)


class TrainOutput(NamedTuple):
    """Result of one training forward pass."""

    loss: Tensor  # what the optimiser minimises
    fvu: Tensor  # fraction of variance unexplained
    aux_loss: Tensor  # AuxK loss (dead latents), 0 when none
    sparsity_loss: Tensor  # L1 / L0 penalty, 0 for TopK
    codes: SparseCodes
    l0: float  # mean active latents per token


def dense_to_codes(acts: Tensor) -> SparseCodes:
    """Compress dense activations to the k = (max active per row) largest entries."""
    width = int((acts > 0).sum(-1).max().item()) if acts.numel() else 0
    values, indices = acts.topk(max(width, 1), dim=-1, sorted=False)
    return SparseCodes(values.clamp_min(0), indices)


def fraction_unexplained(x: Tensor, recon: Tensor) -> Tensor:
    """FVU: squared error over the total variance of ``x`` (per batch, about its mean)."""
    total = (x - x.mean(0)).pow(2).sum()
    return (recon - x).pow(2).sum() / total.clamp_min(1e-12)


def residual_fvu(x: Tensor, recon: Tensor, estimate: Tensor) -> Tensor:
    """AuxK loss: how badly ``estimate`` explains the (detached) residual ``x - recon``."""
    residual = (x - recon).detach()
    total = (residual - residual.mean(0)).pow(2).sum().clamp_min(1e-12)
    return (estimate - residual).pow(2).sum() / total


class SAE(nn.Module):
    """Base class: parameters, sparse decode, and the pieces every architecture shares."""

    architecture: ClassVar[str] = "base"
    uses_unit_decoder: ClassVar[bool] = True
    supports_tied: ClassVar[bool] = False

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        if cfg.input_norm not in INPUT_NORMS:
            raise SaetoolsError(
                f"unknown input normalisation '{cfg.input_norm}' (choose from "
                f"{', '.join(INPUT_NORMS)})"
            )
        if cfg.tied and not self.supports_tied:
            raise SaetoolsError(f"tied weights are not supported by the {cfg.architecture} SAE")
        self.cfg = cfg
        self.W_enc = nn.Parameter(torch.empty(cfg.d_in, cfg.d_sae))
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self._W_dec = None if cfg.tied else nn.Parameter(torch.empty(cfg.d_sae, cfg.d_in))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self.reset_parameters()

    @property
    def W_dec(self) -> Tensor:
        """Decoder ``[d_sae, d_in]`` (the encoder's transpose when tied)."""
        return self.W_enc.t() if self._W_dec is None else self._W_dec

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Random unit-norm decoder rows; encoder initialised as the decoder's transpose."""
        w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=generator)
        w /= w.norm(dim=-1, keepdim=True)
        if self._W_dec is not None:
            self._W_dec.copy_(w)
        self.W_enc.copy_(w.t())
        self.b_enc.zero_()
        self.b_dec.zero_()

    @property
    def d_sae(self) -> int:
        """Number of latents."""
        return self.cfg.d_sae

    def input_stats(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(scale, shift)`` of each row for :attr:`SAEConfig.input_norm` (None: none)."""
        mode = self.cfg.input_norm
        if mode == "constant_norm_rescale":
            return x.norm(dim=-1, keepdim=True) / self.cfg.d_in**0.5, torch.zeros_like(x[:, :1])
        if mode == "layer_norm":
            mean = x.mean(dim=-1, keepdim=True)
            return (x - mean).std(dim=-1, keepdim=True), mean
        return None

    def normalize_input(self, x: Tensor) -> Tensor:
        """``x`` as the encoder sees it (after :attr:`SAEConfig.input_norm`)."""
        stats = self.input_stats(x)
        if stats is None:
            return x
        scale, shift = stats
        eps = 1e-5 if self.cfg.input_norm == "layer_norm" else 0.0
        return (x - shift) / (scale + eps).clamp_min(1e-12)

    def pre_acts(self, x: Tensor) -> Tensor:
        """Encoder pre-activations ``[n, d_sae]``."""
        x = self.normalize_input(x)
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode_dense(self, x: Tensor) -> Tensor:
        """Dense latent activations ``[n, d_sae]``."""
        codes = self.encode(x)
        return codes.to_dense(self.cfg.d_sae)

    def encode(self, x: Tensor) -> SparseCodes:  # pragma: no cover - abstract
        """Sparse latent activations of ``x [n, d_in]``."""
        raise NotImplementedError

    def decode(self, codes: SparseCodes) -> Tensor:
        """Reconstruction ``[n, d_in]`` from sparse codes (``embedding_bag`` sum)."""
        weight = self.W_dec
        values = codes.values.to(weight.dtype)
        out = F.embedding_bag(codes.indices, weight, per_sample_weights=values, mode="sum")
        return out + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct ``x`` (in its own scale, when inputs are normalised)."""
        recon = self.decode(self.encode(x))
        stats = self.input_stats(x)
        return recon if stats is None else recon * stats[0] + stats[1]

    def training_forward(
        self, x: Tensor, dead: Tensor | None = None
    ) -> TrainOutput:  # pragma: no cover
        """Loss and statistics for one batch; ``dead`` marks latents eligible for AuxK."""
        raise NotImplementedError

    def auxk_loss(self, x: Tensor, recon: Tensor, pre: Tensor, dead: Tensor | None) -> Tensor:
        """AuxK: the top ``k_aux`` dead latents reconstruct the residual ``x - recon``."""
        if dead is None or not bool(dead.any()):
            return pre.new_zeros(())
        k_aux = min(self.cfg.d_in // 2, int(dead.sum()))
        masked = pre.masked_fill(~dead, float("-inf"))
        values, indices = masked.topk(k_aux, dim=-1, sorted=False)
        estimate = F.embedding_bag(
            indices, self.W_dec, per_sample_weights=values.clamp_min(0), mode="sum"
        )
        return residual_fvu(x, recon, estimate)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm."""
        if self._W_dec is not None:
            self._W_dec /= self._W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient component parallel to each (unit-norm) decoder row."""
        if self._W_dec is not None and self._W_dec.grad is not None:
            w, g = self._W_dec, self._W_dec.grad
            g -= (g * w).sum(-1, keepdim=True) * w


class _SelectedPreActs(torch.autograd.Function):
    """Pre-activations at chosen (token, latent) pairs, with a sparse backward.

    Forward returns the given ``values`` (already computed densely without grad); backward
    scatters their gradient into ``W_enc``, ``b_enc`` and the input only at the chosen latents,
    costing O(n * k * d_in) instead of the dense O(n * d_sae * d_in).
    """

    @staticmethod
    def forward(ctx, values, x, W_enc, b_enc, indices):
        ctx.save_for_backward(x, W_enc, indices)
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        x, W_enc, indices = ctx.saved_tensors
        grad = grad.float()
        n, k = indices.shape
        flat_idx = indices.reshape(-1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_x = F.embedding_bag(
                indices, W_enc.t().contiguous().float(), per_sample_weights=grad, mode="sum"
            ).to(x.dtype)
        if ctx.needs_input_grad[2]:
            rows = torch.arange(n, device=x.device).repeat_interleave(k)
            coo = torch.sparse_coo_tensor(
                torch.stack([flat_idx, rows]),
                grad.reshape(-1),
                (W_enc.shape[1], n),
                check_invariants=False,
            )
            grad_w = torch.sparse.mm(coo, x.float()).t().to(W_enc.dtype)
        if ctx.needs_input_grad[3]:
            grad_b = torch.zeros(W_enc.shape[1], device=x.device, dtype=grad.dtype)
            grad_b.index_add_(0, flat_idx, grad.reshape(-1))
        return None, grad_x, grad_w, grad_b, None


@register
class TopKSAE(SAE):
    """TopK SAE (Gao et al. 2024): keep the ``k`` largest pre-activations of each token."""

    architecture = "topk"

    def __init__(self, cfg: SAEConfig) -> None:
        if not cfg.k or cfg.k < 1:
            raise SaetoolsError("a TopK SAE needs k >= 1")
        super().__init__(cfg)

    def encode(self, x: Tensor) -> SparseCodes:
        """The k largest pre-activations per token (ReLU'd)."""
        values, indices = self.pre_acts(x).topk(self.cfg.k, dim=-1, sorted=False)
        return SparseCodes(values.clamp_min(0), indices)

    def training_forward(self, x: Tensor, dead: Tensor | None = None) -> TrainOutput:
        """FVU + AuxK/32, with a sparse backward through the selected latents."""
        centered = x - self.b_dec if self.cfg.apply_b_dec_to_input else x
        with torch.no_grad():
            dtype = torch.bfloat16 if centered.device.type == "cpu" else centered.dtype
            pre = (centered.detach().to(dtype) @ self.W_enc.detach().to(dtype)).float()
            pre += self.b_enc.detach()
            top_values, top_idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
            aux_idx = None
            if dead is not None and bool(dead.any()):
                k_aux = min(self.cfg.d_in // 2, int(dead.sum()))
                _, aux_idx = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1, sorted=False)
                aux_values = pre.gather(1, aux_idx)
        if aux_idx is None:
            selected = _SelectedPreActs.apply(top_values, centered, self.W_enc, self.b_enc, top_idx)
        else:
            both = torch.cat([top_idx, aux_idx], 1)
            selected = _SelectedPreActs.apply(
                torch.cat([top_values, aux_values], 1), centered, self.W_enc, self.b_enc, both
            )
        values = selected[:, : self.cfg.k].clamp_min(0)
        codes = SparseCodes(values, top_idx)
        recon = self.decode(codes)
        fvu = fraction_unexplained(x, recon)
        aux = x.new_zeros(())
        if aux_idx is not None:
            estimate = F.embedding_bag(
                aux_idx,
                self.W_dec,
                per_sample_weights=selected[:, self.cfg.k :].clamp_min(0),
                mode="sum",
            )
            aux = residual_fvu(x, recon, estimate)
        l0 = float((values > 0).sum(-1).float().mean())
        zero = x.new_zeros(())
        return TrainOutput(fvu + aux / 32, fvu, aux, zero, codes, l0)


class _ThresholdSAE(SAE):
    """Shared pieces of SAEs with a per-latent threshold at inference (JumpReLU, BatchTopK)."""

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(cfg.d_sae))

    def encode(self, x: Tensor) -> SparseCodes:
        """JumpReLU: pre-activations above the latent's threshold."""
        pre = self.pre_acts(x)
        return dense_to_codes(pre * (pre > self.threshold))


@register
class BatchTopKSAE(_ThresholdSAE):
    """BatchTopK (Bussmann et al. 2024): the ``k * n`` largest activations over a batch of n.

    A running estimate of the smallest selected activation becomes a JumpReLU threshold used at
    inference, so encoding does not depend on the batch.
    """

    architecture = "batchtopk"

    def __init__(self, cfg: SAEConfig) -> None:
        if not cfg.k or cfg.k < 1:
            raise SaetoolsError("a BatchTopK SAE needs k >= 1")
        super().__init__(cfg)
        self.register_buffer("threshold_estimate", torch.tensor(-1.0))

    def training_forward(self, x: Tensor, dead: Tensor | None = None) -> TrainOutput:
        """FVU + AuxK/32 with batch-level top-k selection; updates the inference threshold."""
        pre = self.pre_acts(x)
        acts = pre.clamp_min(0)
        flat = acts.flatten()
        keep = flat.topk(min(self.cfg.k * x.shape[0], flat.numel()), sorted=False)
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[keep.indices] = True
        mask &= flat > 0
        acts = (acts.flatten() * mask).view_as(acts)
        with torch.no_grad():
            selected = flat[mask]
            if selected.numel():
                smallest = selected.min()
                est = self.threshold_estimate
                est.copy_(smallest if est < 0 else 0.99 * est + 0.01 * smallest)
                self.threshold.fill_(float(est))
        recon = acts @ self.W_dec + self.b_dec
        fvu = fraction_unexplained(x, recon)
        aux = self.auxk_loss(x, recon, pre, dead)
        codes = dense_to_codes(acts.detach())
        l0 = float((acts > 0).sum(-1).float().mean())
        return TrainOutput(fvu + aux / 32, fvu, aux, x.new_zeros(()), codes, l0)

    @torch.no_grad()
    def calibrate_threshold(self, x: Tensor) -> float:
        """Set the inference threshold so that ``x`` gets ``k`` active latents per row on average.

        The running estimate lags while activations still grow during training; fitting the
        threshold once on a sample at the end is exact for that sample.
        """
        acts = self.pre_acts(x).clamp_min(0).flatten()
        count = min(self.cfg.k * x.shape[0], int((acts > 0).sum()))
        if count == 0:
            return float(self.threshold[0])
        value = float(acts.topk(count, sorted=True).values[-1])
        self.threshold.fill_(value)
        self.threshold_estimate.fill_(value)
        return value


class _JumpReLUFn(torch.autograd.Function):
    """pre * H(pre - theta) with a rectangle-kernel pseudo-derivative for theta."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = ((pre - theta).abs() < eps / 2).to(grad.dtype) / eps
        grad_pre = grad * (pre > theta)
        grad_theta = (-(theta / 1.0) * kernel * grad).sum(0)
        return grad_pre, grad_theta, None


class _StepFn(torch.autograd.Function):
    """H(pre - theta) with rectangle-kernel pseudo-derivatives (for the L0 loss)."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = ((pre - theta).abs() < eps / 2).to(grad.dtype) / eps
        # The pseudo-derivative also reaches the pre-activations (as in Anthropic's 2025 JumpReLU
        # recipe): the L0 penalty then pushes near-threshold pre-activations down, not only
        # thresholds up, which trains far faster than thresholds alone.
        return kernel * grad, (-kernel * grad).sum(0), None


@register
class JumpReLUSAE(_ThresholdSAE):
    """JumpReLU (Rajamanoharan et al. 2024): per-latent learned thresholds, L0 penalty.

    Trained with straight-through pseudo-derivatives (rectangle kernel of width ``bandwidth``);
    ``sparsity_coeff`` weighs the L0 term.
    """

    architecture = "jumprelu"
    bandwidth: float = 0.2
    sparsity_coeff: float = 2e-2
    initial_threshold: float = 0.1
    threshold_lr_scale: float = 20.0  # thresholds move in log space; Adam steps are tiny otherwise

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.full((cfg.d_sae,), self.initial_threshold).log())
        self.threshold.copy_(self.log_threshold.detach().exp())

    def training_forward(self, x: Tensor, dead: Tensor | None = None) -> TrainOutput:
        """FVU + coeff * L0 (+ AuxK/32)."""
        pre = self.pre_acts(x)
        theta = self.log_threshold.exp()
        acts = _JumpReLUFn.apply(pre, theta, self.bandwidth)
        l0_per_token = _StepFn.apply(pre, theta, self.bandwidth).sum(-1).mean()
        recon = acts @ self.W_dec + self.b_dec
        fvu = fraction_unexplained(x, recon)
        aux = self.auxk_loss(x, recon, pre, dead)
        sparsity = self.sparsity_coeff * l0_per_token
        with torch.no_grad():
            self.threshold.copy_(theta.detach())
        codes = dense_to_codes(acts.detach())
        return TrainOutput(
            fvu + sparsity + aux / 32, fvu, aux, sparsity, codes, float(l0_per_token.detach())
        )


@register
class ReLUSAE(SAE):
    """ReLU SAE with an L1 penalty weighted by decoder norms (arXiv:2309.08600; optional tied
    weights).

    The loss is FVU + (coeff / d_in) * sum_i f_i ||W_dec_i||: with inputs scaled to norm
    sqrt(d_in), FVU is about the squared error divided by d_in, so ``coeff`` has the meaning of the
    usual lambda in ``||x - x^||^2 + lambda * sum_i f_i ||W_dec_i||`` (default 5).
    """

    architecture = "relu"
    supports_tied = True
    uses_unit_decoder = False
    sparsity_coeff: float = 5.0

    def encode(self, x: Tensor) -> SparseCodes:
        """ReLU of the pre-activations, kept sparse."""
        return dense_to_codes(self.pre_acts(x).clamp_min(0))

    def training_forward(self, x: Tensor, dead: Tensor | None = None) -> TrainOutput:
        """FVU + coeff / d_in * sum_i f_i * ||W_dec_i|| (mean over tokens)."""
        acts = self.pre_acts(x).clamp_min(0)
        recon = acts @ self.W_dec + self.b_dec
        fvu = fraction_unexplained(x, recon)
        penalty = (acts * self.W_dec.norm(dim=-1)).sum(-1).mean()
        sparsity = self.sparsity_coeff / self.cfg.d_in * penalty
        codes = dense_to_codes(acts.detach())
        l0 = float((acts > 0).sum(-1).float().mean())
        return TrainOutput(fvu + sparsity, fvu, x.new_zeros(()), sparsity, codes, l0)


def build_sae(cfg: SAEConfig) -> SAE:
    """Instantiate the registered architecture named by ``cfg.architecture``."""
    try:
        cls = ARCHITECTURES[cfg.architecture]
    except KeyError:
        raise SaetoolsError(
            f"unknown SAE architecture '{cfg.architecture}' "
            f"(choose from {', '.join(sorted(ARCHITECTURES))})"
        ) from None
    return cls(cfg)
