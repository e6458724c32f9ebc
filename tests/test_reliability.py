"""Awkward and hostile situations: bad label files, outputs that cannot be written, labels that
must follow their SAE, store file modes, batching-independent values, a store diffed against
raw data, and concurrent encodes into one store."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

import saetools
from saetools.errors import InputError

from .helpers import cli_error, fresh_home, random_sae, write_jsonl

TEXTS = [
    f"Document {i}: the {w} is a tool used for {u}."
    for i, (w, u) in enumerate(
        [("hammer", "nails"), ("saw", "wood"), ("kettle", "water"), ("pen", "writing")] * 6
    )
]


@pytest.fixture(scope="module")
def small_sae(tmp_path_factory):
    """A random TopK SAE for the default reader (layer 15), with a labels.jsonl."""
    labels = {j: f"first label {j}" for j in range(256)}
    return random_sae(tmp_path_factory.mktemp("sae") / "small", labels=labels)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_bad_labels_line_is_one_error_naming_file_line_and_field(tmp_path, small_sae):
    from saetools.labels import load_labels

    folder = tmp_path / "sae"
    shutil.copytree(small_sae, folder)
    good = {"latent": 1, "label": "fine"}
    for bad, fragment in [
        ("{not json", "malformed JSON"),
        ('{"latent": "x", "label": "y"}', "field 'latent'"),
        ('{"latent": -3, "label": "y"}', "field 'latent'"),
        ('{"latent": 2, "label": 7}', "field 'label'"),
        ('{"latent": 2, "label": "y", "keywords": ["a"]}', "field 'keywords'"),
        ("[1, 2]", "expected a JSON object"),
    ]:
        (folder / "labels.jsonl").write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(InputError) as info:
            load_labels(folder)
        message = str(info.value)
        assert f"{folder / 'labels.jsonl'}:2" in message and fragment in message
        assert "\n" not in message


def test_labels_follow_the_sae_named_not_the_cached_store_or_the_working_directory(
    tmp_path, small_sae, reader_bf16, monkeypatch
):
    from saetools.labels import labels_of_store

    copy = tmp_path / "copy"
    shutil.copytree(small_sae, copy)
    write_jsonl(copy / "labels.jsonl", [{"latent": j, "label": f"copy {j}"} for j in range(256)])
    first = saetools.encode(TEXTS, reader=reader_bf16, sae=small_sae, progress=False)
    again = saetools.encode(TEXTS, reader=reader_bf16, sae=copy, progress=False)
    assert first.folder == again.folder  # same weights: one cached store
    assert labels_of_store(first)[3] == "first label 3"
    assert labels_of_store(again)[3] == "copy 3"
    # the store records the SAE's absolute path: labels do not depend on the working directory
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(small_sae, tmp_path)
    out = saetools.encode(
        TEXTS[:8], tmp_path / "rel", reader=reader_bf16, sae=relative, progress=False
    )
    monkeypatch.chdir(tmp_path.parent)
    assert labels_of_store(saetools.open_store(out.folder))[3] == "first label 3"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["encode", "{data}", "--out", "{file}", "--reader", "/no/such/model"], "existing file"),
        (
            ["diff", "{data}", "{data}", "--html", "/no/such/dir/r.html", "--reader", "/no/such"],
            "no such folder /no/such/dir",
        ),
        (
            ["diff", "{data}", "{data}", "--out", "{tmp}/rows.txt", "--reader", "/no/such"],
            "must end in .csv or .jsonl",
        ),
        (["search", "{data}", "q", "--out", "{tmp}", "--reader", "/no/such"], "is a folder"),
        (["diff", "{tmp}/missing.jsonl", "{data}", "--reader", "/no/such"], "no such file"),
        (["train", "{data}", "--out", "{file}", "--reader", "/no/such"], "existing file"),
        (["search", "{data}", "q", "--top", "0", "--reader", "/no/such"], "--top must be"),
        (
            ["encode", "{data}", "--out", "{tmp}/s", "--window", "1", "--reader", "/no/such"],
            "--window must be at least 2",
        ),
        (["cluster", "{data}", "--k", "1", "--reader", "/no/such"], "--k must be at least 2"),
        (["diff", "{data}", "{data}", "--rho", "0", "--reader", "/no/such"], "--rho must be"),
        (
            ["diff", "{data}", "{data}", "--threshold", "high", "--reader", "/no/such"],
            "--threshold must be",
        ),
    ],
)
def test_outputs_and_inputs_are_checked_before_any_model_loads(tmp_path, args, fragment):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS[:4]])
    existing = tmp_path / "exists.txt"
    existing.write_text("x")
    values = {"data": data, "file": existing, "tmp": tmp_path}
    # a reader that cannot load: any error about it would mean a model was tried first
    message = cli_error(*[a.format(**values) for a in args])
    assert fragment in message and "/no/such/model" not in message


def test_store_files_share_one_mode_and_values_do_not_depend_on_shard_size(
    tmp_path, small_sae, reader_bf16
):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS])
    one = saetools.encode(data, tmp_path / "a", reader=reader_bf16, sae=small_sae, progress=False)
    many = saetools.encode(
        data, tmp_path / "b", reader=reader_bf16, sae=small_sae, shard_docs=5, progress=False
    )
    assert len(one.manifest["shards"]) == 1 and len(many.manifest["shards"]) == 5
    files = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert {_mode(p) for p in files} == {_mode(tmp_path / "b" / "manifest.json")}
    assert (one.matrix != many.matrix).nnz == 0
    assert np.array_equal(one.spans, many.spans)


def test_diff_of_a_store_and_a_file_encodes_the_file_like_the_store(
    tmp_path, small_sae, reader_bf16
):
    a = saetools.encode(
        TEXTS[:12], tmp_path / "a", reader=reader_bf16, sae=small_sae, progress=False
    )
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": t.upper()} for t in TEXTS[12:]])
    frame = saetools.diff(a.folder, b, progress=False)
    # the store's SAE, not the shipped 4,608-latent one: its 256 latents, grouped into rows
    assert frame["size"].sum() == 256
    assert frame.attrs["source_b"] == str(b)
    other = tmp_path / "other"
    from saetools.sae.io import save_sae
    from saetools.sae.models import SAEConfig, build_sae

    save_sae(build_sae(SAEConfig("topk", 576, 256, 8)), other, dtype=torch.float32)
    message = cli_error("diff", a.folder, b, "--sae", other)
    assert "not the SAE" in message and str(a.folder) in message


def test_an_encode_into_a_locked_store_waits_for_the_lock(tmp_path, small_sae):
    from saetools.store.writer import store_lock

    from .helpers import run_encode

    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS])
    out = tmp_path / "s"
    with store_lock(out):  # another encode holds the store
        proc = run_encode(data, out, small_sae)
        first = proc.stderr.readline()  # blocks until the encode reports that it waits
        assert first.startswith("waiting: another encode is writing") and str(out) in first
        assert proc.poll() is None and not (out / "manifest.json").exists()
    _, rest = proc.communicate(timeout=600)
    assert proc.returncode == 0, rest
    store = saetools.open_store(out)
    assert store.manifest["complete"] and len(store) == len(TEXTS)


def test_a_long_document_read_in_parts_pools_as_if_read_whole(tmp_path, small_sae, reader_bf16):
    long_text = " ".join(f"Sentence {i} tells of the {TEXTS[i % 24][12:]}" for i in range(300))
    texts = [TEXTS[0], long_text, TEXTS[1]]
    saved = (reader_bf16.stream_tokens, reader_bf16.token_budget)
    try:
        reader_bf16.token_budget = reader_bf16.window  # one window per batch on both paths
        whole = saetools.encode(
            texts, tmp_path / "whole", reader=reader_bf16, sae=small_sae, progress=False
        )
        reader_bf16.stream_tokens = 600  # the long document (~4,000 tokens) now comes in parts
        parts = list(reader_bf16.iter_parts(texts))
        assert [d for d, _, _ in parts].count(1) > 3 and [last for d, _, last in parts if d == 1][
            -1
        ]
        streamed = saetools.encode(
            texts, tmp_path / "streamed", reader=reader_bf16, sae=small_sae, progress=False
        )
    finally:
        reader_bf16.stream_tokens, reader_bf16.token_budget = saved
    assert whole.matrix.nnz > 0
    assert (whole.matrix != streamed.matrix).nnz == 0
    assert np.array_equal(whole.spans, streamed.spans)


def _peak_rss_gb(args) -> tuple[float, str]:
    """Peak RSS (GB) of ``saetools ARGS`` in a subprocess, and its stderr."""
    script = (
        "import resource, sys\n"
        "from saetools.cli import main\n"
        "try:\n    main()\n"
        "finally:\n"
        "    print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0]) / 1e6, proc.stderr


def test_a_50_mb_document_is_cut_in_bounded_memory(tmp_path, small_sae):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"text": "lorem ipsum dolor sit amet " * 2_000_000}) + "\n")
    assert big.stat().st_size > 50_000_000
    small = write_jsonl(tmp_path / "small.jsonl", [{"text": "lorem ipsum dolor sit amet"}])
    options = ["--sae", small_sae, "--max-tokens-per-doc", "2000"]
    baseline, _ = _peak_rss_gb(["encode", small, "--out", tmp_path / "s0", *options])
    peak, stderr = _peak_rss_gb(["encode", big, "--out", tmp_path / "s", *options])
    assert "note: 1 document(s) cut at 2,000 tokens" in stderr
    assert "tok" in stderr  # progress counts tokens
    # reading the whole document held every token's activations (> 6 GB within 30 s here)
    assert peak - baseline < 2.0, f"peak RSS {peak:.2f} GB against {baseline:.2f} GB"
    store = saetools.open_store(tmp_path / "s")
    assert store.manifest["cut_docs"] == 1 and store.manifest["reader"]["max_tokens"] == 2000
    assert store.spans[:, 1].max() < 20_000  # only the first 2,000 tokens were read


def test_a_store_whose_shipped_sae_moved_finds_it_by_its_weights(tmp_path, reader_bf16):
    from saetools.labels import labels_of_store, load_labels
    from saetools.sae.packs import DEFAULT_SAE_DIR

    store = saetools.encode(TEXTS[:3], tmp_path / "s", reader=reader_bf16, progress=False)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["sae"]["path"] = "/elsewhere/site-packages/saetools/models/smollm2-135m-l15-topk"
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    moved = saetools.open_store(tmp_path / "s")
    assert moved.sae_path == DEFAULT_SAE_DIR
    assert labels_of_store(moved) == load_labels(DEFAULT_SAE_DIR) != {}
    assert store.sae_fingerprint == moved.sae_fingerprint


def test_a_dataframe_is_read_by_its_text_column(tmp_path, small_sae, reader_bf16):
    import pandas as pd

    frame = pd.DataFrame({"text": TEXTS[:6], "label": ["x"] * 6})
    store = saetools.encode(frame, reader=reader_bf16, sae=small_sae, progress=False)
    assert store.docs["text"].tolist() == TEXTS[:6]  # not the column names
    named = pd.DataFrame({"body": TEXTS[:6]})
    again = saetools.encode(named, reader=reader_bf16, sae=small_sae, field="body", progress=False)
    assert again.docs["text"].tolist() == TEXTS[:6]
    with pytest.raises(saetools.SaetoolsError, match="no column 'text'.*body"):
        saetools.encode(named, reader=reader_bf16, sae=small_sae, progress=False)


def test_a_named_reader_without_layer_reads_at_the_sae_layer(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from saetools.cli import cli

    home = fresh_home(tmp_path / "home")
    monkeypatch.setenv("SAETOOLS_HOME", str(home))
    sae = random_sae(tmp_path / "sae", 64, 4, labels={j: f"thing {j}" for j in range(64)})
    cfg = json.loads((sae / "cfg.json").read_text())
    cfg["metadata"]["saetools"]["reader"]["layer"] = 5  # an SAE trained at layer 5
    (sae / "cfg.json").write_text(json.dumps(cfg))
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS[:6]])
    for args in (["search", data, "thing"], ["correlate", data], ["cluster", data, "--k", "2"]):
        result = CliRunner().invoke(
            cli, [*map(str, args), "--reader", "smollm2-135m", "--sae", str(sae), "--quiet"]
        )
        assert result.exit_code == 0, result.output
    layers = {
        json.loads(p.read_text())["reader"]["layer"]
        for p in (home / "stores").glob("*/manifest.json")
    }
    assert layers == {5}  # not the reader's default layer 15
