"""Readers: the layer hook, early stop, windows, batching, offsets, embedding reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saetools.errors import SaetoolsError
from saetools.readers.hf import pack_batches, plan_windows


def test_hooked_layer_equals_full_forward_hidden_state(reader_fp32):
    reader = reader_fp32
    text = "The committee postponed its decision until the spring meeting."
    ids, _ = reader.tokenize(text)
    window = [reader.sink_id] + ids
    hooked = reader.forward_windows([window])[0]
    with torch.inference_mode():
        # A plain full forward: take the stop hook off for this one call.
        handles = reader.blocks[reader.layer]._forward_hooks.copy()
        reader.blocks[reader.layer]._forward_hooks.clear()
        try:
            full = reader.model(
                input_ids=torch.tensor([window]), output_hidden_states=True, use_cache=False
            )
        finally:
            reader.blocks[reader.layer]._forward_hooks.update(handles)
    expected = full.hidden_states[reader.layer + 1][0]
    assert hooked.dtype == expected.dtype == torch.float32
    assert torch.equal(hooked, expected)


def test_blocks_above_layer_never_run(reader_fp32):
    reader = reader_fp32
    calls = [0] * reader.n_layers
    handles = [
        block.register_forward_pre_hook(lambda m, a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, block in enumerate(reader.blocks)
    ]
    try:
        list(reader.iter_activations(["One short document.", "And another one here."]))
    finally:
        for h in handles:
            h.remove()
    assert all(c > 0 for c in calls[: reader.layer + 1])
    assert calls[reader.layer + 1 :] == [0] * (reader.n_layers - reader.layer - 1)


def test_first_position_and_padding_excluded(reader_fp32):
    reader = reader_fp32
    texts = ["Short.", "A much longer document that needs padding for the short one in a batch."]
    batched = list(reader.iter_activations(texts))
    alone = [next(reader.iter_activations([t])) for t in texts]
    for b, a, text in zip(batched, alone, texts, strict=True):
        ids, _ = reader.tokenize(text)
        assert b.acts.shape == (len(ids), reader.d_model)  # no sink row, no pad rows
        torch.testing.assert_close(b.acts, a.acts, atol=1e-4, rtol=1e-4)


def test_offsets_and_tokens_match_text(reader_fp32):
    text = "Über café: naïve tokens—with punctuation!"
    out = next(reader_fp32.iter_activations([text]))
    assert out.offsets.shape == (len(out.tokens), 2)
    for token, (s, e) in zip(out.tokens, out.offsets, strict=True):
        assert text[s:e] == token
    assert (np.diff(out.offsets[:, 0]) >= 0).all()
    covered = set()
    for s, e in out.offsets:
        covered.update(range(s, e))
    # Byte-level BPE may split one character over two tokens (overlapping spans), but every
    # non-space character is covered by some token.
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered


def test_long_documents_are_chunked_and_pooled_over_all_windows(reader_fp32):
    reader = reader_fp32
    text = " ".join(f"sentence number {i} says something." for i in range(60))
    ids, _ = reader.tokenize(text)
    old = (reader.window, reader.overlap, reader.truncate)
    try:
        reader.window, reader.overlap = 32, 8
        chunked = next(reader.iter_activations([text]))
        reader.truncate = True
        truncated = next(reader.iter_activations([text]))
    finally:
        reader.window, reader.overlap, reader.truncate = old
    assert len(ids) > 100
    assert chunked.acts.shape[0] == len(ids)
    assert chunked.tokens[-1] == text[chunked.offsets[-1][0] : chunked.offsets[-1][1]]
    assert truncated.acts.shape[0] == 31
    # The first window's tokens are identical either way.
    torch.testing.assert_close(chunked.acts[:31], truncated.acts)


@pytest.mark.parametrize(
    "n,window,overlap", [(1, 8, 2), (7, 8, 2), (8, 8, 2), (50, 8, 2), (100, 16, 0)]
)
def test_plan_windows_keeps_every_token_once(n, window, overlap):
    plans = plan_windows(n, window, overlap, truncate=False)
    kept = [t for start, end, keep in plans for t in range(max(start, keep), end)]
    assert kept == list(range(n))
    assert all(end - start <= window - 1 for start, end, _ in plans)


def test_pack_batches_respects_token_budget():
    lengths = [5, 100, 30, 30, 7, 64, 1]
    batches = pack_batches(lengths, 128)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 128 or len(batch) == 1


def test_layer_out_of_range_is_a_clear_error():
    from saetools.readers import load_reader

    with pytest.raises(SaetoolsError, match=r"layer 40 out of range: .* has 30 layers \(0-29\)"):
        load_reader(None, 40, quiet=True)


def test_bf16_is_close_to_fp32():
    from saetools.readers import load_reader

    text = "Cosine similarity between bf16 and fp32 activations should be very high."
    bf16 = load_reader(None, 15, dtype="bfloat16", quiet=True)
    fp32 = load_reader(None, 15, dtype="float32", quiet=True)
    a = next(bf16.iter_activations([text])).acts.float()
    b = next(fp32.iter_activations([text])).acts
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert bf16.dtype == torch.bfloat16 and bf16.describe()["dtype"] == "bfloat16"
    assert float(cos.min()) > 0.99


def test_embedding_reader_one_vector_per_document():
    from saetools.readers import EmbeddingReader

    reader = EmbeddingReader()
    texts = ["The cat sat on the mat.", "A kitten was sitting on the rug.", "Stock prices fell."]
    outs = list(reader.iter_activations(texts))
    assert [o.acts.shape for o in outs] == [(1, 384)] * 3
    vectors = torch.cat([o.acts for o in outs])
    assert np.allclose(vectors.norm(dim=-1).numpy(), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_first_use_converts_the_gguf_silently_when_quiet(tmp_path):
    """A fresh machine converts the GGUF once; with quiet=True (the CLI's --quiet) that prints
    nothing, so one-line errors stay one line."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SAETOOLS_HOME": str(tmp_path)}
    code = "from saetools.readers import load_reader; print(load_reader(quiet=True).d_model)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "576" and proc.stderr == ""
    assert any((tmp_path / "readers").iterdir())


def test_auto_dtype_follows_the_measured_probe_and_is_cached(tmp_path, monkeypatch):
    import json

    import torch

    from saetools.readers.base import BF16_SPEEDUP_NEEDED, cpu_dtype_probe, resolve_dtype

    monkeypatch.setenv("SAETOOLS_HOME", str(tmp_path))
    probe = cpu_dtype_probe()
    expected = (
        "bfloat16" if probe["bfloat16_s"] * BF16_SPEEDUP_NEEDED <= probe["float32_s"] else "float32"
    )
    assert probe["choice"] == expected
    assert resolve_dtype("auto") == getattr(torch, expected)
    cached = json.loads((tmp_path / "dtype-probe.json").read_text())
    assert [v["choice"] for v in cached.values()] == [expected]
    # the cached answer is used as it is (no new measurement)
    key = next(iter(cached))
    other = "float32" if expected == "bfloat16" else "bfloat16"
    cached[key]["choice"] = other
    (tmp_path / "dtype-probe.json").write_text(json.dumps(cached))
    assert resolve_dtype("auto") == getattr(torch, other)
    # explicit dtypes are taken as given; a corrupt cache is measured again
    assert resolve_dtype("bfloat16") == torch.bfloat16
    (tmp_path / "dtype-probe.json").write_text("not json")
    assert cpu_dtype_probe()["choice"] == expected


def test_reader_records_the_dtype_it_resolved(reader_bf16):
    from saetools.readers.base import cpu_dtype_probe

    assert reader_bf16.describe()["dtype"] == cpu_dtype_probe()["choice"]


def test_the_next_chunk_is_tokenised_on_a_worker_while_this_one_runs(reader_fp32, monkeypatch):
    import threading

    texts = [f"Text number {k} is {'quite ' * k}short." for k in range(7)]
    expected = []  # chunk by chunk, tokenised on this thread
    for lo in range(0, len(texts), 2):
        chunk = texts[lo : lo + 2]
        for doc, part, last in reader_fp32._read_chunk(chunk, reader_fp32._tokenized(chunk)):
            expected.append((lo + doc, part, last))
    threads = []
    tokenized = reader_fp32._tokenized

    def recording(chunk):
        threads.append(threading.current_thread().name)
        return tokenized(chunk)

    monkeypatch.setattr(reader_fp32, "_tokenized", recording)
    got = list(reader_fp32.iter_parts(texts, docs_per_step=2))
    assert len(threads) == 4 and all(t.startswith("tokenize") for t in threads[1:])
    assert [(d, last) for d, _, last in got] == [(d, last) for d, _, last in expected]
    for (_, part, _), (_, want, _) in zip(got, expected, strict=True):
        assert torch.equal(part.acts, want.acts) and part.tokens == want.tokens
