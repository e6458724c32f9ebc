"""Hostile text and files: control characters, spreadsheet formulas, pickled code."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from saetools.errors import SaetoolsError
from saetools.report.tables import write_table
from saetools.text import terminal_safe

from .helpers import random_sae, write_jsonl

ESCAPES = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\rgone"


def test_terminal_safe_removes_every_control_character_but_newline_and_tab():
    text = "".join(chr(c) for c in range(0, 160)) + "é…\n"
    safe = terminal_safe(text)
    assert len(safe) == len(text)
    assert not [c for c in safe if (ord(c) < 32 and c not in "\n\t") or 127 <= ord(c) < 160]
    assert safe.endswith("é…\n") and "\t" in safe and "\n" in safe
    assert terminal_safe(ESCAPES) == "\ufffd]0;pwned\ufffd\ufffd[31mred\ufffd[0m\ufffdgone"


def test_search_output_shows_no_escape_sequence_from_documents_or_labels(tmp_path, reader_bf16):
    from saetools.cli import cli

    labels = {j: f"tool {ESCAPES}" for j in range(128)}
    sae = random_sae(tmp_path / "sae", 128, seed=1, labels=labels)
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"text": f"A hammer {ESCAPES} drives nails {i}."} for i in range(12)]
    )
    result = CliRunner().invoke(cli, ["search", str(data), "tool", "--sae", str(sae), "--quiet"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["search", str(data), "tool", "--sae", str(sae)])
    assert result.exit_code == 0, result.output
    assert "pwned" in result.output  # the text is shown ...
    assert "\x1b" not in result.output and "\r" not in result.output and "\x07" not in result.output


def test_csv_cells_that_would_run_as_formulas_are_quoted(tmp_path):
    frame = pd.DataFrame(
        {
            "latent": [1, 2, 3, 4],
            "label": ['=HYPERLINK("http://x")', "+1+1", "@SUM(A1)", "plain -1"],
            "delta": [-0.5, 0.25, -1.0, 0.0],
            "examples": [[{"text": "=cmd"}], [], [], []],
        }
    )
    table = pd.read_csv(write_table(frame, tmp_path / "t.csv"))
    assert table["label"].tolist() == ['\'=HYPERLINK("http://x")', "'+1+1", "'@SUM(A1)", "plain -1"]
    assert table["delta"].tolist() == [-0.5, 0.25, -1.0, 0.0]  # numbers stay numbers
    assert json.loads(table["examples"][0]) == [{"text": "=cmd"}]
    rows = [
        json.loads(x)
        for x in (write_table(frame, tmp_path / "t.jsonl")).read_text().split("\n")
        if x
    ]
    assert rows[0]["label"] == '=HYPERLINK("http://x")'  # JSONL keeps the data as it is


class _Payload:
    """Pickles to a call of os.system: running it would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_payload_in_an_sae_checkpoint_never_runs(tmp_path):
    from saetools.sae.io import load_sae

    marker = tmp_path / "ran"
    folder = tmp_path / "dl"
    folder.mkdir()
    torch.save({"encoder.weight": _Payload(marker)}, folder / "ae.pt")
    with pytest.raises(SaetoolsError) as info:
        load_sae(folder)
    assert "refused" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_a_damaged_sae_file_is_a_one_line_error(tmp_path):
    from saetools.sae.io import load_sae, save_sae
    from saetools.sae.models import SAEConfig, build_sae

    folder = tmp_path / "sae"
    save_sae(build_sae(SAEConfig("topk", 16, 32, 4)), folder)
    weights = folder / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(SaetoolsError) as info:
        load_sae(folder)
    assert "unreadable saelens checkpoint" in str(info.value) and "\n" not in str(info.value)


def _payload_bytes(marker) -> bytes:
    import pickle

    return pickle.dumps(_Payload(marker))


def _sae_folder(tmp_path, fmt):
    from saetools.sae.io import save_sae
    from saetools.sae.models import SAEConfig, build_sae

    folder = tmp_path / fmt
    save_sae(build_sae(SAEConfig("topk", 16, 32, 4)), folder)
    if fmt == "sparsify":
        (folder / "sae_weights.safetensors").rename(folder / "sae.safetensors")
    return folder


@pytest.mark.parametrize("fmt", ["saelens", "sparsify"])
def test_a_pickle_in_place_of_safetensors_weights_never_runs(tmp_path, fmt):
    from saetools.sae.io import load_sae

    marker = tmp_path / "ran"
    folder = _sae_folder(tmp_path, fmt)
    name = "sae.safetensors" if fmt == "sparsify" else "sae_weights.safetensors"
    (folder / name).write_bytes(_payload_bytes(marker))
    with pytest.raises(SaetoolsError) as info:
        load_sae(folder)
    assert "\n" not in str(info.value) and not marker.exists()


@pytest.mark.parametrize("victim", ["shard", "docs.parquet", "manifest.json", "labels.jsonl"])
def test_a_pickle_in_place_of_a_store_or_label_file_never_runs(tmp_path, reader_bf16, victim):
    from saetools.labels import read_label_file
    from saetools.store.verify import verify_store

    marker = tmp_path / "ran"
    sae = random_sae(tmp_path / "sae", 64, 4, seed=5)
    if victim == "labels.jsonl":
        (sae / "labels.jsonl").write_bytes(_payload_bytes(marker))
        with pytest.raises(SaetoolsError):
            read_label_file(sae / "labels.jsonl")
        assert not marker.exists()
        return
    import saetools

    store = saetools.encode(
        ["one text", "two texts"], tmp_path / "s", reader=reader_bf16, sae=sae, progress=False
    )
    target = {
        "shard": store.folder / store.manifest["shards"][0]["file"],
        "docs.parquet": store.folder / "docs.parquet",
        "manifest.json": store.folder / "manifest.json",
    }[victim]
    target.write_bytes(_payload_bytes(marker))
    with pytest.raises(SaetoolsError) as info:
        verify_store(store.folder)
    assert "\n" not in str(info.value) and not marker.exists()


def test_a_pickle_in_the_llm_cache_is_ignored_not_run(tmp_path, monkeypatch):
    from saetools.llm import LLMClient

    monkeypatch.setenv("SAETOOLS_HOME", str(tmp_path))
    marker = tmp_path / "ran"
    client = LLMClient("http://127.0.0.1:9/v1", model="m")
    request = client.request([{"role": "user", "content": "hi"}])
    path = client._cache_path(client.cache_key(request))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_payload_bytes(marker))
    assert client.cached(request) is None and not marker.exists()
