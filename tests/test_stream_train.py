"""Harvest-and-train: activations read buffer by buffer, resumable, reproducible."""

from __future__ import annotations

import json

import pytest
import torch

from saetools.errors import SaetoolsError
from saetools.sae.config import TrainConfig
from saetools.sae.stream import ActivationStream, StreamTrainer

CFG = dict(latents=128, k=8, batch_size=256, buffer_tokens=1024, tokens=256 * 24, warmup_steps=4)


@pytest.fixture
def small_chunks(reader_fp32, monkeypatch):
    """The session reader, reading 8 documents per chunk so buffers end inside the corpus."""
    monkeypatch.setattr(reader_fp32, "chunk_docs", 8)
    return reader_fp32


def trainer(reader, texts, out, **overrides) -> StreamTrainer:
    cfg = TrainConfig(**{**CFG, **overrides})
    stream = ActivationStream(reader, texts, cfg.buffer_tokens)
    return StreamTrainer(cfg, stream, out, reader_info=reader.describe(), progress=False)


def test_streamed_training_runs_the_planned_steps_and_goes_round_the_documents(
    small_chunks, example_texts, tmp_path
):
    texts = example_texts[:24]
    run = trainer(small_chunks, texts, tmp_path / "sae")
    result = run.train()
    assert result.steps == 24 and result.tokens == 24 * 256
    record = result.sae.cfg.extra["training"]
    streamed = record["streamed"]
    assert streamed["documents"] == 24
    # 6,144 tokens from 24 short documents: the run read them more than once
    assert streamed["passes"] > 1
    assert 0 < result.fvu < 1 and result.l0 == pytest.approx(8, abs=0.5)
    assert not (tmp_path / "sae" / "checkpoint").exists()
    saved = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert saved["d_sae"] == 128


def test_a_stopped_run_resumes_at_its_last_buffer_and_ends_identical(
    small_chunks, example_texts, tmp_path, monkeypatch
):
    texts = example_texts[:60]
    clean = trainer(small_chunks, texts, tmp_path / "clean").train()

    stopped = trainer(small_chunks, texts, tmp_path / "run")
    original = stopped.batches

    def stop_after_11():
        for i, batch in enumerate(original()):
            if i == 11:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(stopped, "batches", stop_after_11)
    with pytest.raises(KeyboardInterrupt):
        stopped.train()
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    position = state["position"]
    assert 0 < state["step"] < 11 and position["doc"] > 0

    resumed_run = trainer(small_chunks, texts, tmp_path / "run")
    first_reads = []
    real = resumed_run.stream.read

    def record(position, min_rows):
        first_reads.append(dict(position))
        return real(position, min_rows)

    monkeypatch.setattr(resumed_run.stream, "read", record)
    resumed = resumed_run.train(resume=True)
    # the resumed run starts reading where the checkpoint's buffer ended, not from the start
    assert first_reads[0] == position
    assert resumed.steps == clean.steps
    for name in ("W_enc", "b_enc", "b_dec", "W_dec"):
        assert torch.equal(getattr(resumed.sae, name), getattr(clean.sae, name)), name


def test_a_repeated_run_writes_the_same_bytes(small_chunks, example_texts, tmp_path):
    texts = example_texts[:30]
    for name in ("a", "b"):
        trainer(small_chunks, texts, tmp_path / name, tokens=256 * 10).train()
    for file in ("sae_weights.safetensors", "cfg.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_a_checkpoint_of_other_documents_is_refused(small_chunks, example_texts, tmp_path):
    run = trainer(small_chunks, example_texts[:20], tmp_path / "run")
    run.initialise()
    run.save_checkpoint()
    with pytest.raises(SaetoolsError, match="other settings"):
        trainer(small_chunks, example_texts[20:40], tmp_path / "run").train(resume=True)


def test_bad_token_counts_and_empty_documents_are_refused(small_chunks, tmp_path):
    with pytest.raises(SaetoolsError, match="--tokens must be at least one batch"):
        trainer(small_chunks, ["some text"], tmp_path / "a", tokens=100)
    with pytest.raises(SaetoolsError, match="no documents"):
        ActivationStream(small_chunks, [], 1024)


def test_train_command_streams_a_jsonl_file(small_chunks, example_texts, tmp_path):
    from click.testing import CliRunner

    from saetools.cli import cli

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in example_texts[:20]))
    out = tmp_path / "sae"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(data),
            "--out",
            str(out),
            "--layer",
            "5",
            "--reader-dtype",
            "float32",
            "--latents",
            "64",
            "--k",
            "4",
            "--batch-size",
            "256",
            "--buffer-tokens",
            "1024",
            "--tokens",
            "2048",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2,048 tokens, 8 steps" in result.output
    assert not (out / "documents.parquet").exists()
    saved = json.loads((out / "cfg.json").read_text())["metadata"]["saetools"]["extra"]
    assert saved["training"]["streamed"]["documents"] == 20


def test_a_continued_run_starts_from_the_saved_sae_and_records_it(
    small_chunks, example_texts, tmp_path
):
    from saetools.sae.io import sae_fingerprint

    first = trainer(small_chunks, example_texts[:30], tmp_path / "first", tokens=256 * 8).train()
    # at a learning rate of ~0 a continued run changes nothing: what it starts from, unfolded
    # from the saved (raw-input) weights with the recorded input scale, is the saved SAE
    still = trainer(
        small_chunks,
        example_texts[30:60],
        tmp_path / "still",
        tokens=256 * 4,
        init=str(tmp_path / "first"),
        lr=1e-20,
    ).train()
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        torch.testing.assert_close(getattr(still.sae, name), getattr(first.sae, name))
    record = still.sae.cfg.extra["training"]
    assert record["input_scale"] == first.sae.cfg.extra["training"]["input_scale"]
    assert record["continued_from"]["sae"] == sae_fingerprint(first.sae)
    assert record["continued_from"]["tokens_seen"] == first.tokens == 256 * 8
    assert record["tokens_seen"] == 256 * 4
    # at the usual rate a few steps from the trained SAE beat the same steps from random weights
    kwargs = dict(tokens=256 * 4, warmup_steps=1)
    fresh = trainer(small_chunks, example_texts[30:60], tmp_path / "fresh", **kwargs).train()
    continued = trainer(
        small_chunks,
        example_texts[30:60],
        tmp_path / "continued",
        init=str(tmp_path / "first"),
        **kwargs,
    ).train()
    assert continued.fvu < fresh.fvu


def test_continuing_an_sae_of_another_shape_is_refused(small_chunks, example_texts, tmp_path):
    trainer(small_chunks, example_texts[:20], tmp_path / "first", tokens=256 * 4).train()
    run = trainer(
        small_chunks, example_texts[:20], tmp_path / "b", latents=64, init=str(tmp_path / "first")
    )
    with pytest.raises(SaetoolsError, match=r"cannot continue it: d_sae 128 \(here 64\)"):
        run.train()
