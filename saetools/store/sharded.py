"""Work on a store one shard at a time, in memory bounded by a shard, not by the store.

A store too large to hold as one matrix (16 bytes per entry in memory) is read shard by shard:
per-latent statistics (:class:`ShardedColumns`, the same reductions as
:class:`~saetools.store.activity.ColumnData`), views that keep only some documents
(:func:`rows_view`, for the few an analysis shows), the best rows of some latents
(:class:`TopRows`), and each latent's top documents (:func:`top_entries`). Every result equals
the in-memory one (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

IN_MEMORY_MAX_ENTRIES = 100_000_000
"""Stores with more entries than this (1.6 GB as one in-memory matrix) are analysed shard by
shard; ``open_store(..., lazy=True/False)`` overrides."""


def memory_bytes() -> int:
    """This machine's physical memory."""
    import os

    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits_in_memory(store) -> None:
    """Refuse, with the reason, to load a lazy store's whole matrix where it cannot fit (16
    bytes per entry above 80% of the machine's memory) rather than swap until killed."""
    from ..errors import SaetoolsError

    need = 16 * int(store.manifest["nnz"])
    have = memory_bytes()
    if need > 0.8 * have:
        raise SaetoolsError(
            f"{store.folder}: {store.manifest['nnz']:,} entries need ~{need / 2**30:,.0f} GiB in "
            f"memory for this analysis and this machine has {have / 2**30:,.0f} GiB; diff, "
            "correlate (latent pairs) and search read a store this size shard by shard "
            "(docs/scale.md)"
        )


class Block(NamedTuple):
    """The rows ``lo:lo + matrix.shape[0]`` of a store: pooled values and peak spans."""

    lo: int
    matrix: sp.csr_matrix
    spans: np.ndarray


def iter_blocks(store, progress: str | None = None) -> Iterator[Block]:
    """Every shard of ``store`` in row order, checked as it is read (one in memory at a time);
    ``progress`` names a progress bar."""
    from tqdm.auto import tqdm

    from .verify import read_shard

    shards = store.manifest["shards"]
    bar = tqdm(shards, desc=progress, unit="shard", disable=progress is None, leave=False)
    for shard in bar:
        data = read_shard(store.folder, shard, store.d_sae)
        lo, hi = shard["rows"]
        matrix = sp.csr_matrix(
            (
                data["values"].astype(np.float32),
                data["indices"].astype(np.int32),
                data["indptr"].astype(np.int64),
            ),
            shape=(hi - lo, store.d_sae),
        )
        yield Block(lo, matrix, data["spans"].reshape(-1, 2))


def _torch_columns(matrix: sp.csr_matrix):
    import torch

    return (
        torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.data.astype(np.float32, copy=False)),
    )


class ShardedColumns:
    """Per-column reductions of a store's matrix computed shard by shard; the interface of
    :class:`~saetools.store.activity.ColumnData` (max, moments, counts_above)."""

    def __init__(self, store, progress: bool = False) -> None:
        self.store = store
        self.n_rows, self.n_cols = len(store), store.d_sae
        self.progress = progress

    def _blocks(self, what: str):
        desc = f"{what} ({self.store.folder.name})" if self.progress else None
        return iter_blocks(self.store, desc)

    def _stats(self) -> dict[str, np.ndarray]:
        """The column statistics: saved beside the shards, and kept on the store object once
        read or computed (one pass per store, however many analyses ask)."""
        stats = self.store.__dict__.get("_column_stats")
        if stats is None:
            stats = read_column_stats(self.store)
            if stats is None:
                stats = self._compute_first_pass()
                write_column_stats(self.store, stats)
            self.store.__dict__["_column_stats"] = stats
        return stats

    def _compute_first_pass(self) -> dict[str, np.ndarray]:
        import torch

        top = torch.zeros(self.n_cols, dtype=torch.float32)
        entries = torch.zeros(self.n_cols, dtype=torch.int64)
        sums = torch.zeros(self.n_cols, dtype=torch.float64)
        squares = torch.zeros(self.n_cols, dtype=torch.float64)
        for block in self._blocks("scales"):
            columns, values = _torch_columns(block.matrix)
            if len(values):
                top.scatter_reduce_(0, columns, values, "amax")
            values = values.double()
            sums += torch.bincount(columns, weights=values, minlength=self.n_cols)
            squares += torch.bincount(columns, weights=values * values, minlength=self.n_cols)
            entries += torch.bincount(columns, minlength=self.n_cols)
        return {
            "max": top.numpy(),
            "sums": sums.numpy(),
            "squares": squares.numpy(),
            "entries": entries.numpy(),
        }

    def max(self) -> np.ndarray:
        """Per column maximum of the stored values (0 for empty columns)."""
        return self._stats()["max"].astype(np.float64)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per column sum and sum of squares (absent entries count as 0)."""
        stats = self._stats()
        return stats["sums"], stats["squares"]

    def entries(self) -> np.ndarray:
        """Per column, the number of stored entries (documents where it fired at all)."""
        return self._stats()["entries"]

    def active_counts(self, rho: float) -> np.ndarray:
        """:meth:`counts_above` ``rho`` times each column's maximum, saved with the column
        statistics (a second query of the store skips the pass)."""
        stats = self._stats()
        name = f"active@{rho!r}"
        if name not in stats:
            stats[name] = self.counts_above(rho * self.max())
            write_column_stats(self.store, stats)
        return stats[name]

    def counts_above(self, thresholds: np.ndarray | float) -> np.ndarray:
        """Per column, the number of rows whose value exceeds the column's threshold."""
        import torch

        tau = torch.tensor(np.broadcast_to(thresholds, (self.n_cols,)), dtype=torch.float32)
        counts = torch.zeros(self.n_cols, dtype=torch.int64)
        for block in self._blocks("counts"):
            columns, values = _torch_columns(block.matrix)
            counts += torch.bincount(columns[values > tau[columns]], minlength=self.n_cols)
        return counts.numpy()


COLUMN_STATS = "column-stats.safetensors"
"""Per-latent max, sum, sum of squares and entry count of a lazy store, computed on first use
and kept beside its shards (a store never changes once complete)."""


def _stats_key(store) -> str:
    m = store.manifest
    return f"{m['nnz']}:{m['n_docs']}:{m['source'].get('docs_hash')}:{m['sae']['fingerprint']}"


def read_column_stats(store) -> dict[str, np.ndarray] | None:
    """The saved column statistics of ``store``, or None when absent, stale or unreadable."""
    from safetensors import safe_open

    path = store.folder / COLUMN_STATS
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="np") as fh:
            if (fh.metadata() or {}).get("key") != _stats_key(store):
                return None
            stats = {name: fh.get_tensor(name) for name in fh.keys()}
        if not {"max", "sums", "squares", "entries"} <= stats.keys():
            return None
    except Exception:  # noqa: BLE001 - a damaged cache is recomputed
        return None
    if any(len(v) != store.d_sae for v in stats.values()):
        return None
    return stats


def write_column_stats(store, stats: dict[str, np.ndarray]) -> None:
    """Save column statistics beside the shards (atomically; skipped on a read-only store)."""
    import os

    from safetensors.numpy import save_file

    path = store.folder / COLUMN_STATS
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        save_file(stats, str(tmp), metadata={"key": _stats_key(store)})
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def column_data(store, progress: bool = False):
    """The per-column reductions of a store: in memory, or shard by shard for a lazy store."""
    from .activity import ColumnData

    if getattr(store, "lazy", False):
        return ShardedColumns(store, progress=progress)
    return ColumnData(store.matrix)


def filtered_view(store, keep, desc: str | None = None, visit=None):
    """A view of ``store`` (same shape, rows and latent ids; spans aligned) holding only the
    entries ``keep(block) -> bool mask`` selects, read shard by shard; ``visit(block)`` sees
    every block on the way (for counts made in the same pass). Analyses that look at a few
    latents or rows work on it unchanged, in memory proportional to what it holds."""
    import copy

    from .reader import concat_or_empty

    indptrs, indices, values, spans = [np.zeros(1, np.int64)], [], [], []
    offset = 0
    for block in iter_blocks(store, desc):
        if visit is not None:
            visit(block)
        m = block.matrix
        mask = keep(block)
        kept = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])[m.indptr]
        indptrs.append(kept[1:] + offset)
        offset += int(kept[-1])
        indices.append(m.indices[mask])
        values.append(m.data[mask])
        spans.append(block.spans[mask])
    matrix = sp.csr_matrix(
        (
            concat_or_empty(values, np.float32, (0,)),
            concat_or_empty(indices, np.int32, (0,)),
            np.concatenate(indptrs),
        ),
        shape=(len(store), store.d_sae),
    )
    view = copy.copy(store)
    view.__dict__.pop("peak_starts", None)
    view.__dict__["_loaded"] = (matrix, concat_or_empty(spans, np.int32, (0, 2)))
    view.lazy = False
    return view


def entry_rows(block: Block) -> np.ndarray:
    """The store row of every entry of ``block``."""
    m = block.matrix
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) + block.lo


def rows_view(store, rows, visit=None, progress: bool = False):
    """A :func:`filtered_view` with every entry of the documents ``rows``."""
    wanted = np.unique(np.asarray(rows, dtype=np.int64))
    desc = f"reading {len(wanted)} documents ({store.folder.name})" if progress else None
    return filtered_view(store, lambda block: np.isin(entry_rows(block), wanted), desc, visit)


class TopRows:
    """The ``top`` highest entries of each latent (of ``latents`` only, and above their
    ``thresholds``, when given), gathered block by block; ties go to the earlier row. Once a
    latent has ``top`` entries, only larger values are looked at again."""

    def __init__(self, d_sae: int, top: int, latents=None, thresholds=None) -> None:
        if latents is None:
            self.floor = np.full(d_sae, -np.inf)
        else:
            self.floor = np.full(d_sae, np.inf)  # +inf: latent not followed
            self.floor[np.asarray(latents, np.int64)] = np.asarray(thresholds, np.float64)
        self.top = top
        empty = np.zeros(0, np.int64)
        self.best = (empty, empty, np.zeros(0, np.float32), np.zeros((0, 2), np.int32), empty)

    def add(self, block: Block) -> None:
        """Take in one block."""
        m = block.matrix
        pick = m.data > self.floor[m.indices]  # an equal value in a later row never enters
        latent, row, value, spans, _ = self.best
        merged = [
            np.concatenate([latent, m.indices[pick].astype(np.int64)]),
            np.concatenate([row, entry_rows(block)[pick]]),
            np.concatenate([value, m.data[pick]]),
        ]
        spans = np.concatenate([spans, block.spans[pick]])
        entry = np.arange(len(merged[0]), dtype=np.int64)
        latent, row, value, entry, rank = _best_per_latent(*merged, entry, self.top)
        self.best = (latent, row, value, spans[entry], rank)
        full = rank == self.top - 1
        self.floor[latent[full]] = value[full]

    def rows(self) -> np.ndarray:
        """The rows holding the entries kept."""
        return np.unique(self.best[1])

    def frame(self) -> pd.DataFrame:
        """``latent``, ``rank``, ``row``, ``value``, ``start``, ``end`` of the entries kept,
        by latent, then rank."""
        latent, row, value, spans, rank = self.best
        return pd.DataFrame(
            {
                "latent": latent.astype(np.int32),
                "rank": rank.astype(np.int32),
                "row": row.astype(np.int64),
                "value": value.astype(np.float32),
                "start": spans[:, 0].astype(np.int32),
                "end": spans[:, 1].astype(np.int32),
            }
        )


def _best_per_latent(latent, row, value, entry, top: int):
    """Of entries (latent, row, value, entry), the ``top`` largest values per latent, ties to
    the lower row; sorted by latent, then rank."""
    order = np.lexsort((row, -value, latent))
    latent, row, value, entry = latent[order], row[order], value[order], entry[order]
    starts = np.flatnonzero(np.r_[True, latent[1:] != latent[:-1]]) if len(latent) else latent
    first = np.repeat(starts, np.diff(np.r_[starts, len(latent)]))
    rank = np.arange(len(latent)) - first
    pick = rank < top
    return latent[pick], row[pick], value[pick], entry[pick], rank[pick]


def top_entries(store, top: int, progress: bool = False) -> pd.DataFrame:
    """For every latent, its ``top`` highest-activating documents (ties: earlier rows first):
    ``latent``, ``rank``, ``row``, ``value``, ``start``, ``end``, one shard in memory at a
    time."""
    best = TopRows(store.d_sae, top)
    for block in iter_blocks(store, f"top examples ({store.folder.name})" if progress else None):
        best.add(block)
    return best.frame()
