"""Stores analysed shard by shard equal the same analyses in memory: diff (with grouping,
examples and labels), NPMI pairs with both filters, search by query and by example, and the
per-latent top examples written at the end of an encode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import saetools
from saetools.store import sharded

from .corpora import bbc_documents

PHRASE = " I hope this helps, and please let me know if you have any other questions!"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two real stores of BBC openings in shards of 9 documents, document tables in row groups
    of 16; B has a closing phrase appended to a third of its documents."""
    from saetools.store import docs_table

    folder = tmp_path_factory.mktemp("lazy")
    texts = [text for _, text in bbc_documents(30, 220)]
    planted = [t + PHRASE if k % 3 == 0 else t for k, t in enumerate(texts[75:])]
    kept, docs_table.DOCS_ROW_GROUP = docs_table.DOCS_ROW_GROUP, 16
    try:
        a = saetools.encode(texts[:75], out=folder / "a", shard_docs=9, progress=False)
        b = saetools.encode(planted, out=folder / "b", shard_docs=9, progress=False)
    finally:
        docs_table.DOCS_ROW_GROUP = kept
    assert len(a.manifest["shards"]) == 9 and not a.lazy
    import pyarrow.parquet as pq

    assert pq.ParquetFile(a.folder / "docs.parquet").num_row_groups == 5
    return a, b


def lazy(store):
    opened = saetools.open_store(store.folder, lazy=True)
    assert opened.lazy and "_loaded" not in opened.__dict__
    return opened


def assert_not_loaded(*stores):
    """The lazily opened stores never built their whole matrix or document table."""
    for store in stores:
        assert "_loaded" not in store.__dict__ and "docs" not in store.__dict__


@pytest.fixture
def refuse_whole_reads(stores, monkeypatch):
    """Reading a lazy store's whole matrix or document table (views made of it included)
    fails the test; the in-memory stores are loaded before."""
    from saetools.store import reader, verify

    for store in stores:
        assert len(store.docs) and store.matrix.nnz

    def refuse(*args, **kwargs):
        raise AssertionError("a whole matrix or document table was read")

    loaded = reader.Store._load
    monkeypatch.setattr(
        reader.Store, "_load", lambda self: refuse() if self.lazy_docs else loaded(self)
    )
    monkeypatch.setattr(verify, "read_docs", refuse)


def test_diff_of_lazy_stores_equals_the_in_memory_diff(stores, refuse_whole_reads):
    a, b = stores
    la, lb = lazy(a), lazy(b)
    for by in ("property", "latent"):
        expected = saetools.diff(a, b, by=by, progress=False)
        got = saetools.diff(la, lb, by=by, progress=False)
        assert expected["significant"].sum() >= 1  # the planted phrase is found
        if by == "property":  # a property of several latents, counted shard by shard
            assert expected["size"].max() > 1
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs["n_a"] == 75 and got.attrs == expected.attrs
    assert_not_loaded(la, lb)


def test_npmi_pairs_of_a_lazy_store_equal_the_in_memory_pairs(stores, refuse_whole_reads):
    a, _ = stores
    la = lazy(a)
    for options in ({}, {"passage_chars": 0}, {"max_label_similarity": 1.0, "min_support": 3}):
        expected = saetools.correlate(a, progress=False, **options)
        got = saetools.correlate(la, progress=False, **options)
        assert len(expected) > 5
        pd.testing.assert_frame_equal(got, expected)
    assert_not_loaded(la)


def test_search_of_a_lazy_store_equals_the_in_memory_search(stores, refuse_whole_reads):
    _, b = stores
    lb = lazy(b)
    for query, like in (("sport", None), (None, "Please let me know if you have questions.")):
        expected = saetools.search(b, query, like=like, progress=False)
        got = saetools.search(lb, query, like=like, progress=False)
        assert len(expected) == 10
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs == expected.attrs
    assert_not_loaded(lb)
    assert (lb.folder / sharded.COLUMN_STATS).exists()


def reference_examples(store, top: int) -> pd.DataFrame:
    """Top documents per latent straight from the in-memory matrix."""
    m, rows = store.matrix.tocoo(), []
    order = np.lexsort((m.row, -m.data, m.col))
    entry = sp.csr_matrix(
        (np.arange(store.matrix.nnz), store.matrix.indices, store.matrix.indptr)
    ).tocoo()
    position = {(r, c): e for r, c, e in zip(entry.row, entry.col, entry.data, strict=True)}
    rank: dict[int, int] = {}
    for k in order:
        latent = int(m.col[k])
        if rank.get(latent, 0) < top:
            e = position[(m.row[k], m.col[k])]
            start, end = store.spans[e]
            rows.append((latent, rank.get(latent, 0), int(m.row[k]), m.data[k], start, end))
            rank[latent] = rank.get(latent, 0) + 1
    return pd.DataFrame(rows, columns=["latent", "rank", "row", "value", "start", "end"])


def test_examples_written_shard_by_shard_are_each_latents_top_documents(stores):
    a, _ = stores
    for top in (1, 3, 20):
        got = sharded.top_entries(a, top)
        expected = reference_examples(a, top)
        assert len(got) == len(expected) > a.d_sae // 10
        for column in expected.columns:
            assert np.array_equal(got[column].to_numpy(), expected[column].to_numpy()), column
    pd.testing.assert_frame_equal(sharded.top_entries(a, 20), a.examples)


def test_a_rows_view_holds_every_entry_of_the_named_documents_and_nothing_else(stores):
    a, _ = stores
    rows = [70, 3, 40, 3, 17]  # across shards and row groups, repeated, out of order
    seen = []
    view = sharded.rows_view(lazy(a), rows, visit=lambda block: seen.append(block.lo))
    assert seen == [shard["rows"][0] for shard in a.manifest["shards"]]  # one pass
    assert view.matrix.shape == a.matrix.shape
    for row in range(len(a)):
        got, want = view.matrix[row], a.matrix[row]
        if row in rows:
            assert np.array_equal(got.indices, want.indices)
            assert np.array_equal(got.data, want.data)
            for j in want.indices[:5]:
                assert view.span(row, j) == a.span(row, j)
        else:
            assert got.nnz == 0
    assert view.texts(rows) == a.docs["text"].to_numpy()[rows].tolist()
    assert lazy(a).ids(rows) == a.docs["id"].astype(str).to_numpy()[rows].tolist()


def test_column_statistics_are_saved_once_and_recomputed_when_stale(stores):
    _, b = stores
    columns = sharded.ShardedColumns(lazy(b))
    from saetools.store.activity import ColumnData

    expected = ColumnData(b.matrix)
    assert np.array_equal(columns.max(), expected.max())
    assert np.allclose(columns.moments()[0], expected.moments()[0])
    assert np.array_equal(columns.entries(), np.bincount(b.matrix.indices, minlength=b.d_sae))
    tau = 0.5 * expected.max()
    assert np.array_equal(columns.counts_above(tau), expected.counts_above(tau))
    assert np.array_equal(columns.active_counts(0.5), expected.counts_above(tau))
    assert "active@0.5" in sharded.read_column_stats(b)  # a second query skips that pass
    path = b.folder / sharded.COLUMN_STATS
    assert sharded.read_column_stats(b) is not None
    path.write_bytes(b"damaged")
    assert sharded.read_column_stats(b) is None
    assert np.array_equal(sharded.ShardedColumns(lazy(b)).max(), expected.max())
    assert sharded.read_column_stats(b) is not None  # written again


def test_large_stores_open_lazily_by_default(stores, monkeypatch):
    a, _ = stores
    monkeypatch.setattr(sharded, "IN_MEMORY_MAX_ENTRIES", a.manifest["nnz"] - 1)
    assert saetools.open_store(a.folder).lazy
    assert not saetools.open_store(a.folder, lazy=False).lazy


def test_an_analysis_that_needs_the_whole_matrix_says_why_it_cannot_run(stores, monkeypatch):
    a, _ = stores
    monkeypatch.setattr(sharded, "memory_bytes", lambda: a.manifest["nnz"] * 4)
    with pytest.raises(saetools.errors.SaetoolsError, match="entries need .* GiB in memory"):
        saetools.feature(lazy(a), 100)
    assert saetools.feature(a, 100)  # the same store opened in memory (already loaded)
