"""The store: encode round trip, spans of maxima, top examples, atomic and resumable writes."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import torch

import saetools
from saetools.errors import SaetoolsError
from saetools.store.manifest import read_manifest, write_json_atomic

from .helpers import run_encode, write_jsonl

MIN_CONTRIBUTION = 0.05  # the store keeps a latent only where it writes >= 5% of a token


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, reader_bf16, example_sae, example_texts):
    out = tmp_path_factory.mktemp("store") / "s"
    return saetools.encode(
        example_texts[:60],
        out,
        reader=reader_bf16,
        sae=example_sae,
        shard_docs=16,
        min_contribution=MIN_CONTRIBUTION,
        progress=False,
    )


def test_store_round_trip(small_store, example_texts):
    store = saetools.open_store(small_store.folder)
    assert list(store.docs["text"]) == example_texts[:60]
    assert list(store.docs["id"]) == [str(i) for i in range(60)]
    assert store.matrix.shape == (60, 1024) and store.matrix.dtype == np.float32
    assert (np.diff(store.matrix.indptr) > 0).all()
    assert store.spans.shape == (store.matrix.nnz, 2)
    assert store.manifest["complete"] and len(store.manifest["shards"]) == 4
    assert store.manifest["nnz"] == store.matrix.nnz


def test_pooled_values_and_spans_match_token_maxima(small_store, reader_bf16, example_sae):
    sae = saetools.load_sae(example_sae)
    store = small_store
    texts = list(store.docs["text"])
    for row in (0, 17, 59):
        # Read the row's whole shard (16 documents) so the batches match the encode run.
        shard = texts[row // 16 * 16 : row // 16 * 16 + 16]
        item = list(reader_bf16.iter_activations(shard))[row % 16]
        with torch.no_grad():
            x = item.acts.float()
            dense = sae.encode(x).to_dense(1024)
            share = dense * sae.W_dec.float().norm(dim=-1) / x.norm(dim=-1, keepdim=True)
        maxima, argmax = dense.max(0)
        lo, hi = store.matrix.indptr[row], store.matrix.indptr[row + 1]
        latents = store.matrix.indices[lo:hi]
        minimum = store.manifest["pooling"]["min_contribution"]
        assert minimum == MIN_CONTRIBUTION
        kept = (maxima > 0) & (share.max(0).values >= minimum)
        assert 0 < kept.sum() < (maxima > 0).sum()
        assert set(latents) == set(torch.nonzero(kept).flatten().tolist())
        np.testing.assert_allclose(store.matrix.data[lo:hi], maxima[latents].numpy(), rtol=2e-3)
        for latent in latents[:25]:
            token = int(argmax[latent])
            # ties between tokens are possible; the stored span must be a token with the maximum
            tied = torch.nonzero(dense[:, latent] == maxima[latent]).flatten().tolist()
            assert store.span(row, int(latent)) in [tuple(item.offsets[t]) for t in tied], token


def test_top_examples_are_the_highest_documents(small_store):
    store = small_store
    examples = store.examples
    dense = store.matrix.toarray()
    for latent in examples["latent"].unique()[:50]:
        rows = examples[examples["latent"] == latent].sort_values("rank")
        expected = np.sort(dense[:, latent][dense[:, latent] > 0])[::-1][:20]
        np.testing.assert_allclose(rows["value"].to_numpy(), expected)
        for r in rows.itertuples():
            assert store.span(int(r.row), int(latent)) == (r.start, r.end)


def test_reusing_out_for_other_data_is_refused(
    small_store, reader_bf16, example_sae, example_texts
):
    with pytest.raises(SaetoolsError, match="holds a store of other documents"):
        saetools.encode(
            example_texts[60:70],
            small_store.folder,
            reader=reader_bf16,
            sae=example_sae,
            progress=False,
        )


def test_incomplete_store_cannot_be_opened(tmp_path, small_store):
    manifest = read_manifest(small_store.folder)
    manifest["complete"] = False
    manifest["shards"] = manifest["shards"][:2]
    (tmp_path / "s").mkdir()
    write_json_atomic(tmp_path / "s" / "manifest.json", manifest)
    with pytest.raises(SaetoolsError, match=r"incomplete \(32 of 60 documents\).*resume"):
        saetools.open_store(tmp_path / "s")


def test_pooled_vectors_are_compact(small_store):
    shard_bytes = sum(
        os.path.getsize(small_store.folder / s["file"]) for s in small_store.manifest["shards"]
    )
    pooled_bytes = small_store.matrix.nnz * 6  # int32 latent + float16 value per entry
    assert pooled_bytes / len(small_store) < 16_000
    assert shard_bytes < pooled_bytes * 2.5  # spans (2 x int32) and indptr on top


def test_kill_9_then_rerun_resumes_to_the_clean_result(
    tmp_path, reader_bf16, example_sae, example_texts
):
    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in example_texts[:100]])
    killed = tmp_path / "killed"
    proc = run_encode(data, killed, example_sae)
    deadline = time.time() + 300
    while time.time() < deadline:
        manifest = killed / "manifest.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = read_manifest(killed)
    assert not partial["complete"] and 2 <= len(partial["shards"]) < 5
    with pytest.raises(SaetoolsError, match="incomplete"):
        saetools.open_store(killed)
    resumed = run_encode(data, killed, example_sae)
    assert resumed.wait() == 0, resumed.stderr.read()
    # the clean result, read in this process by the reader the command loads by default
    clean = saetools.encode(
        data, tmp_path / "clean", reader=reader_bf16, sae=example_sae, shard_docs=20, progress=False
    )
    a, b = saetools.open_store(killed), saetools.open_store(clean.folder)
    assert a.docs.equals(b.docs)
    assert (a.matrix != b.matrix).nnz == 0 and a.matrix.nnz == b.matrix.nnz
    np.testing.assert_array_equal(a.spans, b.spans)
    assert not list(killed.glob("**/*.tmp"))


def test_encode_cache_tells_apart_saes_that_differ_only_in_k(
    tmp_path, monkeypatch, reader_bf16, example_sae, example_texts
):
    import copy

    from saetools.sae.io import load_sae

    monkeypatch.setenv("SAETOOLS_HOME", str(tmp_path))
    wide = load_sae(example_sae)
    narrow = copy.deepcopy(wide)
    narrow.cfg.k = 2
    texts = example_texts[:6]
    first = saetools.encode(texts, reader=reader_bf16, sae=wide, progress=False)
    second = saetools.encode(texts, reader=reader_bf16, sae=narrow, progress=False)
    assert first.folder != second.folder
    assert second.matrix.nnz < first.matrix.nnz


def test_a_cpu_read_of_a_document_range_reads_that_range_only(tmp_path, example_texts):
    """On a CPU each window is read alone, so a shard reads its own rows, not the whole chunk
    of 256 that holds them (which re-read, and counted twice, the documents around it)."""
    from saetools.readers import load_reader
    from saetools.sae.io import load_sae
    from saetools.store.writer import pooled_rows

    from .helpers import random_sae

    reader = load_reader(None, max_tokens=8, quiet=True)
    assert reader.device.type == "cpu" and reader.read_align == 1 and reader.chunk_docs == 256
    sae = load_sae(random_sae(tmp_path / "sae", d_sae=64, k=4))
    texts = [t for t in example_texts if len(t) > 200][:30]  # every one longer than 8 tokens
    rows = [row for row, pooled, _ in pooled_rows(reader, sae, texts, 10, 13, 0.0) if pooled]
    assert rows == [10, 11, 12]
    assert reader.cut_docs == 3  # the three documents of the range, each cut once
    whole = {row: p for row, p, _ in pooled_rows(reader, sae, texts, 0, 30, 0.0) if p}
    again = {row: p for row, p, _ in pooled_rows(reader, sae, texts, 10, 13, 0.0) if p}
    for row in rows:  # a range read alone gives the values of one long read, bit for bit
        assert np.array_equal(whole[row].values, again[row].values)
        assert np.array_equal(whole[row].indices, again[row].indices)
        assert np.array_equal(whole[row].spans, again[row].spans)
