"""The shipped default SAE: format, size, labels, and planted properties found with it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import saetools
from saetools.api import DEFAULT_SAE_DIR

from .conftest import ROOT


def test_default_sae_loads_and_is_small():
    sae = saetools.load_sae(DEFAULT_SAE_DIR)
    assert sae.cfg.d_in == 576 and sae.cfg.architecture == "topk"
    assert sae.cfg.reader["name"] == "smollm2-135m"
    size = sum(p.stat().st_size for p in DEFAULT_SAE_DIR.iterdir())
    assert size <= 25 * 2**20
    provenance = json.loads((DEFAULT_SAE_DIR / "provenance.json").read_text())
    assert provenance["training"]["eval"]["fvu"] < 0.3


def test_default_labels_cover_the_latents():
    rows = [json.loads(line) for line in open(DEFAULT_SAE_DIR / "labels.jsonl")]
    sae = saetools.load_sae(DEFAULT_SAE_DIR)
    assert len({r["latent"] for r in rows}) >= 0.95 * sae.cfg.d_sae
    for row in rows[:50]:
        assert row["source"] == "keywords" and row["label"]
        assert {"density", "top_tokens", "example_ids"} <= set(row)
    assert sum(1 for r in rows if r.get("score") is not None) >= 0.5 * len(rows)


@pytest.mark.parametrize("plant", ["phrase", "apology"])
def test_planted_property_found_with_the_shipped_sae(plant, reader_bf16, example_texts):
    from benchmarks.planted import best_top_auroc, planted_split

    case = planted_split(example_texts, plant, 0.10, seed=1)
    frame = saetools.diff(case.a, case.b, reader=reader_bf16, progress=False)
    up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
    store_b = saetools.encode(case.b, reader=reader_bf16, progress=False)
    auroc, _ = best_top_auroc(up, store_b.matrix, case.planted, top=5)
    assert auroc >= 0.9, (plant, auroc)


def test_quickstart_diff_shows_a_labelled_significant_difference(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "saetools.cli",
            "diff",
            ROOT / "examples" / "a.jsonl",
            ROOT / "examples" / "b.jsonl",
            "--html",
            tmp_path / "report.html",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert (
        "more frequent in B" in out
        and "(no significant latent)" not in out.split("more frequent in A")[0]
    )
    assert "tokens:" not in out.split("more frequent in A")[0]  # real labels, not fallbacks
    assert (tmp_path / "report.html").exists()
