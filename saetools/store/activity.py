"""When is a latent "active" in a document: per-latent thresholds relative to its own scale.

Max-pooled over a document, a TopK SAE's latents almost all fire somewhere at a low level, so
"value > 0" says little. Every analysis therefore calls latent j active in a document when its
pooled activation exceeds ``rho * s_j``, where ``s_j`` is j's largest pooled activation over the
documents analysed (rho = 0.5 by default; the same rule as ``diff``, see docs/diff.md).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..options import DEFAULT_RHO

__all__ = ["DEFAULT_RHO", "ColumnData", "active_share", "binarize", "latent_scale", "normalized"]


class ColumnData:
    """A CSR matrix's column ids and values as torch tensors, converted once and reused by the
    per-column reductions below (all O(nnz), multi-threaded)."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        import torch

        self.n_rows, self.n_cols = matrix.shape
        self.columns = torch.from_numpy(matrix.indices.astype(np.int64))
        self.values = torch.from_numpy(matrix.data.astype(np.float32, copy=False))

    def max(self) -> np.ndarray:
        """Per column maximum of the stored values (0 for empty columns)."""
        import torch

        out = torch.zeros(self.n_cols, dtype=torch.float32)
        if len(self.values):
            out.scatter_reduce_(0, self.columns, self.values, "amax")
        return out.numpy().astype(np.float64)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per column sum and sum of squares (absent entries count as 0)."""
        import torch

        values = self.values.double()
        sums = torch.bincount(self.columns, weights=values, minlength=self.n_cols)
        squares = torch.bincount(self.columns, weights=values * values, minlength=self.n_cols)
        return sums.numpy(), squares.numpy()

    def counts_above(self, thresholds: np.ndarray | float) -> np.ndarray:
        """Per column, the number of rows whose value exceeds the column's threshold."""
        import torch

        tau = torch.tensor(np.broadcast_to(thresholds, (self.n_cols,)), dtype=torch.float32)
        above = self.values > tau[self.columns]
        return torch.bincount(self.columns[above], minlength=self.n_cols).numpy()


def latent_scale(matrix: sp.csr_matrix) -> np.ndarray:
    """Per latent, its largest pooled activation over the rows (0 where it never fires)."""
    return ColumnData(matrix).max()


def binarize(
    matrix: sp.csr_matrix, rho: float = DEFAULT_RHO, scale: np.ndarray | None = None
) -> sp.csr_matrix:
    """0/1 CSR matrix (float32) of the entries above ``rho`` times their latent's scale."""
    scale = latent_scale(matrix) if scale is None else scale
    matrix = matrix.tocsr()
    keep = matrix.data > rho * scale[matrix.indices]
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    indptr = kept_before[matrix.indptr]
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), matrix.indices[keep], indptr),
        shape=matrix.shape,
    )


def active_share(active: sp.spmatrix) -> np.ndarray:
    """Per latent, the share of rows in which it is active in a 0/1 matrix from :func:`binarize`."""
    return np.diff(active.tocsc().indptr) / max(active.shape[0], 1)


def normalized(matrix: sp.csr_matrix, scale: np.ndarray | None = None) -> sp.csr_matrix:
    """The matrix with each latent's activations divided by its scale (values in [0, 1])."""
    scale = latent_scale(matrix) if scale is None else scale
    out = matrix.tocsr(copy=True).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0)
    out.data /= safe[out.indices].astype(np.float32)
    return out
