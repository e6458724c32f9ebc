"""Streaming input: documents reach the store's table a row group at a time (memory does not grow
with the corpus), Parquet is read by batches of rows, and encoding reads texts back a window at
a time with values equal to one long read."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import saetools
from saetools.corpus import read_corpus, stream_corpus
from saetools.store import docs_table, writer

from .helpers import random_sae, write_jsonl

SPOOL_AND_READ = """
import json, resource, sys
from pathlib import Path
import pyarrow.parquet  # its import is not the reading's memory
from saetools.corpus import stream_corpus
from saetools.store.docs_table import DocColumn, spool_documents
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
docs = spool_documents(stream_corpus(sys.argv[1]), Path(sys.argv[2]))
texts = DocColumn(docs.path)
chars = sum(len(t) for lo in range(0, len(texts), 8192) for t in texts[lo : lo + 8192])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": docs.n_docs, "chars": chars, "grew_mib": (peak - before) / 1024}))
"""


def spool_in_a_fresh_process(data, out) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SPOOL_AND_READ, str(data), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def generated_jsonl(path, megabytes: int) -> int:
    """A JSONL file of ~``megabytes`` MB of 500-character answers; returns its record count."""
    filler = "An answer of some length that says a few things about a question. " * 8
    n = megabytes * 2000
    with open(path, "w") as fh:
        for k in range(n):
            fh.write(json.dumps({"id": f"r{k}", "text": f"{k} {filler[:490]}"}) + "\n")
    return n


def test_reading_a_200_mb_jsonl_into_a_store_table_uses_bounded_memory(tmp_path):
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    n_small, n_large = generated_jsonl(small, 50), generated_jsonl(large, 200)
    assert large.stat().st_size > 200e6
    got_small = spool_in_a_fresh_process(small, tmp_path / "small.parquet")
    got_large = spool_in_a_fresh_process(large, tmp_path / "large.parquet")
    assert (got_small["n"], got_large["n"]) == (n_small, n_large)
    assert got_large["chars"] == sum(len(f"{k} ") + 490 for k in range(n_large))
    # four times the input, not more memory: a row group at a time
    assert got_large["grew_mib"] < got_small["grew_mib"] + 40
    assert got_large["grew_mib"] < 0.75 * large.stat().st_size / 2**20, got_large


def test_a_streamed_table_holds_what_read_corpus_reads(tmp_path):
    rows = [{"id": "a", "text": "one"}, {"id": "b", "text": "  "}, {"id": "a", "text": "three"}]
    rows += [{"id": f"x{k}", "text": f"text {k}"} for k in range(40)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    kept = docs_table.DOCS_ROW_GROUP
    docs_table.DOCS_ROW_GROUP = 8
    try:
        docs = docs_table.spool_documents(stream_corpus(data), tmp_path / "t.parquet", warn=False)
    finally:
        docs_table.DOCS_ROW_GROUP = kept
    corpus = read_corpus(data, warn=False)
    table = pd.read_parquet(docs.path)
    assert table["id"].tolist() == [d.id for d in corpus.documents]  # repeats: line numbers
    assert table["id"].iloc[1] == "3" and table["text"].tolist() == corpus.texts
    assert table["line"].tolist() == [d.line for d in corpus.documents]
    assert (docs.n_docs, docs.skipped_empty) == (len(corpus.documents), 1)
    assert docs.docs_hash == docs_table.hash_documents((d.id, d.text) for d in corpus.documents)
    texts = docs_table.DocColumn(docs.path)
    assert texts.file.num_row_groups == 6
    assert texts[5:30] == corpus.texts[5:30] and texts[-1] == corpus.texts[-1]
    assert list(texts) == corpus.texts


def test_parquet_input_is_read_in_batches_of_rows(tmp_path, monkeypatch):
    from saetools import corpus as corpus_module

    path = tmp_path / "d.parquet"
    frame = pd.DataFrame(
        {"id": [f"p{k}" for k in range(50)], "text": [f"t {k}" for k in range(50)]}
    )
    frame.to_parquet(path, row_group_size=7)
    monkeypatch.setattr(corpus_module, "PARQUET_BATCH_ROWS", 5)
    got = list(corpus_module.iter_documents(path))
    assert got == [(f"p{k}", f"t {k}", k + 1) for k in range(50)]
    with pytest.raises(saetools.errors.InputError, match="no such column"):
        list(corpus_module.iter_documents(path, "body"))


def test_encoding_in_windows_equals_one_long_read(tmp_path, reader_bf16, monkeypatch):
    sae = random_sae(tmp_path / "sae", d_sae=256, k=8)
    rows = [
        {"id": f"d{k}", "text": f"Document {k} says {'more ' * (k % 7)}things."} for k in range(30)
    ]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    monkeypatch.setattr(reader_bf16, "chunk_docs", 4)
    whole = saetools.encode(
        data, out=tmp_path / "whole", reader=reader_bf16, sae=sae, progress=False
    )
    monkeypatch.setattr(writer, "ENCODE_WINDOW_DOCS", 8)
    monkeypatch.setattr(docs_table, "DOCS_ROW_GROUP", 5)
    windowed = saetools.encode(
        data, out=tmp_path / "windowed", reader=reader_bf16, sae=sae, shard_docs=6, progress=False
    )
    assert len(windowed.manifest["shards"]) == 5
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(windowed.matrix, name), getattr(whole.matrix, name))
    assert np.array_equal(windowed.spans, whole.spans)
    assert windowed.docs[["id", "text"]].equals(whole.docs[["id", "text"]])
    assert windowed.manifest["source"]["docs_hash"] == whole.manifest["source"]["docs_hash"]
    assert not list(tmp_path.glob(".*docs-*.parquet"))  # no spool left behind


def test_a_cpu_read_yields_a_document_once_at_most_a_window_of_tokens_is_read(
    reader_bf16, example_texts, monkeypatch
):
    """On a CPU each window is read alone, so documents are not held back until a whole chunk is
    read: the first arrives after about one window of tokens (the progress bar moves, and the
    SAE sees activations as they come)."""
    texts = example_texts[:60]
    total = sum(len(ids) for ids, _ in reader_bf16._tokenized(texts))
    assert total > 4 * reader_bf16.window
    reader_bf16.outlier_limit  # noqa: B018 - calibrated before counting
    read: list[int] = []
    forward = reader_bf16.forward_windows

    def counting(inputs):
        read.extend(len(ids) - 1 for ids in inputs)  # the sink token is not the document's
        return forward(inputs)

    monkeypatch.setattr(reader_bf16, "forward_windows", counting)
    parts = reader_bf16.iter_parts(texts)
    doc, _, _ = next(parts)
    assert doc == 0 and 0 < sum(read) <= reader_bf16.window
    assert sum(1 for _ in parts) == len(texts) - 1 and sum(read) >= total
