"""The shipped default SAE: format, size, labels, and planted properties found with it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import saetools
from saetools.sae.packs import ANSWERS_20M_SAE_DIR, DEFAULT_SAE_DIR

from .conftest import ROOT

SHIPPED_ANSWERS_PACKS = pytest.mark.parametrize(
    "folder", [DEFAULT_SAE_DIR, ANSWERS_20M_SAE_DIR], ids=lambda p: p.name
)


@SHIPPED_ANSWERS_PACKS
def test_default_sae_loads_and_is_small(folder):
    sae = saetools.load_sae(folder)
    assert sae.cfg.d_in == 576 and sae.cfg.architecture == "topk"
    assert sae.cfg.reader["name"] == "smollm2-135m"
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 25 * 2**20
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["training"]["eval"]["fvu"] < 0.3
    assert provenance["name"] == folder.name


def test_the_20m_pack_continues_the_default():
    """The 20M-token pack records the shipped default as its start: 10M tokens each."""
    from saetools.sae.io import folder_fingerprint

    training = json.loads((ANSWERS_20M_SAE_DIR / "provenance.json").read_text())["training"]
    start = training["continued_from"]
    assert start["sae"] == folder_fingerprint(DEFAULT_SAE_DIR)
    assert start["tokens_seen"] + training["tokens_seen"] >= 19_990_000


@SHIPPED_ANSWERS_PACKS
def test_default_labels_cover_the_latents(folder):
    rows = [json.loads(line) for line in open(folder / "labels.jsonl")]
    sae = saetools.load_sae(folder)
    assert len({r["latent"] for r in rows}) >= 0.95 * sae.cfg.d_sae
    for row in rows[:50]:
        assert row["source"] in ("keywords", "peak-tokens", "peak-cover") and row["label"]
        assert {"density", "top_tokens", "example_ids"} <= set(row)
    assert sum(1 for r in rows if r.get("score") is not None) >= 0.5 * len(rows)


def test_the_default_packs_labels_match_where_their_latents_fire():
    """The README's first diff: most top labels name something found around the latent's peak
    in the compared documents (the first default pack, keyword labels: none of five)."""
    from saetools.labels.keywords import WINDOW, contains_any, label_terms

    frame = saetools.diff(
        ROOT / "examples" / "a.jsonl", ROOT / "examples" / "b.jsonl", progress=False
    )
    top = frame[(frame["direction"] == "B>A") & frame["significant"]].head(5)
    assert len(top) == 5
    matching = 0
    for row in top.itertuples(index=False):
        windows = [
            item["text"][max(0, item["start"] - WINDOW) : item["end"] + WINDOW]
            for item in row.examples_b
        ]
        terms = label_terms(row.label)
        matching += sum(contains_any(w, terms) for w in windows) * 2 >= len(windows)
    assert matching >= 3, top[["latent", "label", "fires_on"]].to_string()


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
@pytest.mark.parametrize("plant", ["phrase", "apology"])
def test_planted_property_found_with_the_shipped_sae(plant, reader_bf16, example_texts):
    from saetools.evaluation import best_top_auroc, planted_split

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


def test_minilm_pack_loads_with_labels_and_is_small():
    from saetools.sae.packs import DEFAULT_EMBEDDING_SAE_DIR

    sae = saetools.load_sae(DEFAULT_EMBEDDING_SAE_DIR)
    assert sae.cfg.d_in == 384 and sae.cfg.reader["kind"] == "embedding"
    assert sum(p.stat().st_size for p in DEFAULT_EMBEDDING_SAE_DIR.iterdir()) <= 10 * 2**20
    rows = [json.loads(line) for line in open(DEFAULT_EMBEDDING_SAE_DIR / "labels.jsonl")]
    assert len(rows) >= 0.9 * sae.cfg.d_sae and all(r["label"] for r in rows)
    provenance = json.loads((DEFAULT_EMBEDDING_SAE_DIR / "provenance.json").read_text())
    assert provenance["reader"]["name"] == "all-MiniLM-L6-v2"


def test_minilm_reader_gets_its_own_shipped_sae_and_finds_an_added_topic():
    """`--reader minilm` without --sae uses the document-embedding pack; when half of B is
    technology news, the top significant B>A latents fire (mostly) on those articles."""
    import numpy as np

    from saetools.sae.packs import DEFAULT_EMBEDDING_SAE_DIR

    from .corpora import bbc_documents

    docs = bbc_documents(100, 300, seed=3)
    others = [t for topic, t in docs if topic != "tech"]
    tech = [t for topic, t in docs if topic == "tech"]
    a, b = others[:200], others[200:300] + tech[:100]
    is_tech = np.array([False] * 100 + [True] * 100)
    frame = saetools.diff(a, b, reader="minilm", progress=False)
    store_b = saetools.open_store(frame.attrs["store_b"])
    assert store_b.manifest["sae"]["path"] == str(DEFAULT_EMBEDDING_SAE_DIR)
    up = frame[(frame["direction"] == "B>A") & frame["significant"]].head(3)
    assert len(up) >= 2
    for latent, label in zip(up["latent"], up["label"], strict=True):
        fires = store_b.matrix[:, [int(latent)]].toarray().ravel() > 0
        assert is_tech[fires].mean() >= 0.8, (latent, label)
        assert label
