"""The command line end to end: training on the example corpus, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from saetools.sae.io import load_sae

from .conftest import EXAMPLE_CORPUS
from .helpers import write_jsonl


def run_cli(*args, cwd=None, env=None):
    """Run ``saetools`` in a subprocess as a user would; return the completed process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "saetools.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_version_and_help_list_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in (
        "train",
        "evaluate",
        "encode",
        "diff",
        "correlate",
        "cluster",
        "search",
        "label",
        "serve",
        "models",
    ):
        assert command in out.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and "saetools, version" in version.stdout


@pytest.mark.slow  # ~70 s on 2 cores; training itself is covered by tests/test_sae.py
def test_train_on_examples_reaches_target_fvu(tmp_path):
    """Acceptance check: FVU <= 0.25 at k=32 on examples/ with the default reader."""
    out = tmp_path / "sae"
    proc = run_cli(
        "train",
        EXAMPLE_CORPUS,
        "--out",
        out,
        "--latents",
        2304,
        "--k",
        32,
        "--epochs",
        10,
        "--batch-size",
        2048,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    sae = load_sae(out)
    stats = sae.cfg.extra["training"]["eval"]
    assert sae.cfg.k == 32 and sae.cfg.d_sae == 2304 and sae.cfg.d_in == 576
    assert sae.cfg.reader["name"] == "smollm2-135m" and sae.cfg.reader["layer"] == 15
    assert stats["fvu"] <= 0.25
    assert stats["l0"] == pytest.approx(32, abs=0.5)
    assert f"FVU {stats['fvu']:.3f}" in proc.stdout
    assert not (out / "activations").exists() and not (out / "checkpoint").exists()

    evaluated = run_cli("evaluate", out, EXAMPLE_CORPUS, "--max-docs", 100, "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("FVU ")


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unreadable_corpus_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "also fine"}\n{oops\n')
    proc = run_cli("train", path, "--out", tmp_path / "o", "--quiet")
    assert_one_line_error(proc, "bad.jsonl:3", "malformed JSON")


def test_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"body": "x"}])
    proc = run_cli("train", path, "--out", tmp_path / "o", "--quiet")
    assert_one_line_error(proc, "f.jsonl:1", "field 'text'", "missing")


def test_empty_corpus(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    proc = run_cli("train", path, "--out", tmp_path / "o", "--quiet")
    assert_one_line_error(proc, "empty.jsonl", "no documents")


def test_layer_out_of_range(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "hello there"}])
    proc = run_cli("train", path, "--out", tmp_path / "o", "--layer", 31, "--quiet")
    assert_one_line_error(proc, "layer 31 out of range", "30 layers")


def test_sae_width_differs_from_reader(tmp_path):
    import torch

    from saetools.sae.io import save_sae
    from saetools.sae.models import SAEConfig, build_sae

    sae = build_sae(SAEConfig("topk", 64, 128, 8, reader={"name": "smollm2-135m", "layer": 15}))
    save_sae(sae, tmp_path / "sae", dtype=torch.float32)
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "hello there"}])
    proc = run_cli("evaluate", tmp_path / "sae", path, "--quiet")
    assert_one_line_error(proc, "SAE d_in 64 does not match the width 576", "smollm2-135m")


def test_unknown_option_is_a_usage_error(tmp_path):
    proc = run_cli("train", "x.jsonl", "--out", tmp_path, "--no-such-flag")
    assert proc.returncode == 2 and "No such option" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_models_lists_embedded_readers():
    proc = run_cli("models")
    assert proc.returncode == 0
    assert "smollm2-135m" in proc.stdout and "minilm" in proc.stdout
    assert "not installed" not in proc.stdout
    assert "smollm2-135m-l15-topk-answers (default)" in proc.stdout
    assert "minilm-l6-doc-topk (default for --reader minilm)" in proc.stdout
