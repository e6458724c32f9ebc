"""Token codes -> one sparse document vector (max-pooling), with where each maximum occurred."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..sae.models import SparseCodes


class PooledDocument(NamedTuple):
    """One document's max-pooled latents: ids, values and the character span of each maximum."""

    indices: np.ndarray  # int32 [m], ascending
    values: np.ndarray  # float32 [m]
    spans: np.ndarray  # int32 [m, 2]


def max_pool(
    codes: SparseCodes,
    offsets: np.ndarray,
    d_sae: int,
    token_norms: torch.Tensor | None = None,
    decoder_norms: torch.Tensor | None = None,
    min_contribution: float = 0.0,
) -> PooledDocument:
    """Max-pool sparse token codes over a document.

    A latent is kept when its largest *relative contribution* anywhere in the document,
    ``value * ||W_dec_i|| / ||x_token||`` (the share of the token's vector it writes), reaches
    ``min_contribution``; 0 keeps every latent that fired. The kept value is the latent's maximum
    activation; its span is that of the token where the maximum occurred.
    """
    values = codes.values.detach().float().reshape(-1)
    latents = codes.indices.reshape(-1)
    k = codes.values.shape[1]
    active = values > 0
    values, latents = values[active], latents[active]
    tokens = torch.nonzero(active, as_tuple=True)[0] // k
    if values.numel() == 0:
        empty = np.zeros(0, dtype=np.int32)
        return PooledDocument(empty, np.zeros(0, np.float32), np.zeros((0, 2), np.int32))
    pooled = torch.zeros(d_sae).scatter_reduce_(0, latents, values, "amax", include_self=False)
    is_max = values == pooled[latents]
    where = torch.full((d_sae,), -1, dtype=torch.long)
    where[latents[is_max]] = tokens[is_max]
    keep = pooled > 0
    if min_contribution > 0 and token_norms is not None and decoder_norms is not None:
        share = values * decoder_norms[latents] / token_norms[tokens].clamp_min(1e-12)
        best = torch.zeros(d_sae).scatter_reduce_(0, latents, share, "amax", include_self=False)
        keep &= best >= min_contribution
    ids = torch.nonzero(keep, as_tuple=True)[0]
    spans = offsets[where[ids].numpy()] if len(ids) else np.zeros((0, 2), np.int32)
    return PooledDocument(
        ids.numpy().astype(np.int32),
        pooled[ids].numpy().astype(np.float32),
        np.asarray(spans, dtype=np.int32).reshape(-1, 2),
    )


def merge_pooled(first: PooledDocument, second: PooledDocument) -> PooledDocument:
    """Two parts of one document pooled as one: per latent the larger maximum with its span
    (the earlier part's at a tie), so a document read in parts pools as if read whole."""
    ids = np.union1d(first.indices, second.indices).astype(np.int32)
    values = np.zeros(len(ids), np.float32)
    spans = np.zeros((len(ids), 2), np.int32)
    for part in (second, first):  # the first part is written last: it wins ties
        at = np.searchsorted(ids, part.indices)
        better = part.values >= values[at]
        values[at[better]] = part.values[better]
        spans[at[better]] = part.spans[better]
    return PooledDocument(ids, values, spans)


def sae_for_reader(sae, reader):
    """The SAE where the reader's activations are: on its device, in its dtype on a GPU and in
    float32 on a CPU (a copy when that differs from where ``sae`` is, so ``sae`` and its
    fingerprint stay as they were)."""
    import copy

    device = torch.device(getattr(reader, "device", "cpu"))
    dtype = getattr(reader, "dtype", torch.float32) if device.type == "cuda" else torch.float32
    weight = sae.W_enc
    if weight.device == device and weight.dtype == dtype:
        return sae
    return copy.deepcopy(sae).to(device=device, dtype=dtype)


def encode_part(sae, acts: torch.Tensor) -> tuple[SparseCodes, torch.Tensor, torch.Tensor]:
    """``(codes, token_norms, x)`` of token activations: encoded where ``sae`` is; codes and
    norms (of the vectors as the encoder sees them) come back to the host, ``x`` stays."""
    x = acts.to(device=sae.W_enc.device, dtype=sae.W_enc.dtype)
    codes = sae.encode(x)
    norms = sae.normalize_input(x).float().norm(dim=-1)
    return SparseCodes(codes.values.float().cpu(), codes.indices.cpu()), norms.cpu(), x


def decoder_norms(sae) -> torch.Tensor:
    """Norm of each latent's decoder row, on the host."""
    return sae.W_dec.detach().float().norm(dim=-1).cpu()


def pooled_matrix(items, sae, min_contribution: float = 0.0, reader=None):
    """Max-pooled CSR matrix (one row per item, float32) of token activations
    (:class:`saetools.readers.TokenActivations`) encoded by ``sae`` (on ``reader``'s device),
    pooled as a store does."""
    import scipy.sparse as sp

    sae = sae_for_reader(sae, reader)
    norms = decoder_norms(sae)
    indptr, indices, values = [0], [], []
    with torch.inference_mode():
        for item in items:
            codes, token_norms, _ = encode_part(sae, item.acts)
            doc = max_pool(codes, item.offsets, sae.cfg.d_sae, token_norms, norms, min_contribution)
            indices.append(doc.indices)
            values.append(doc.values)
            indptr.append(indptr[-1] + len(doc.indices))
    return sp.csr_matrix(
        (
            np.concatenate(values) if values else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int32),
            np.array(indptr, dtype=np.int64),
        ),
        shape=(len(indptr) - 1, sae.cfg.d_sae),
    )
