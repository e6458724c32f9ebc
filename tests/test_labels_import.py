"""Existing explanations imported for an SAE (Neuronpedia exports, label maps, CSV, JSONL) and
used where labels are used, ahead of machine labels; bad files fail on their line."""

from __future__ import annotations

import json

import pytest

import saetools
from saetools.errors import SaetoolsError
from saetools.labels import labels_of_store, load_labels
from saetools.labels.imports import read_explanations
from saetools.sae.io import folder_fingerprint
from tests.helpers import cli_error, fresh_home, random_sae


def neuronpedia_export(path):
    rows = [
        {
            "modelId": "gemma-2-2b",
            "layer": "20-gemmascope-res-16k",
            "index": "3",
            "description": "references to rain and weather",
            "explanationModelName": "gpt-4o-mini",
            "typeName": "oai_token-act-pair",
        },
        {
            "modelId": "gemma-2-2b",
            "layer": "20-gemmascope-res-16k",
            "index": "7",
            "description": " stock   markets ",
            "explanationModelName": "gpt-4o-mini",
            "typeName": "oai_token-act-pair",
        },
    ]
    path.write_text(json.dumps(rows))
    return path


def test_neuronpedia_export_is_imported_and_wins_over_shipped_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("SAETOOLS_HOME", str(fresh_home(tmp_path / "home")))
    sae = random_sae(tmp_path / "sae", labels={3: "tokens: 'the'", 5: "numbers"})
    export = neuronpedia_export(tmp_path / "np.json")
    from click.testing import CliRunner

    from saetools.cli import cli

    result = CliRunner().invoke(cli, ["labels", "import", str(export), "--sae", str(sae)])
    assert result.exit_code == 0, result.output
    assert "imported 2 labels" in result.output
    labels = load_labels(sae, fingerprint=folder_fingerprint(sae))
    assert labels[3] == "references to rain and weather"  # imported beats the folder's own
    assert labels[7] == "stock markets"  # whitespace normalised
    assert labels[5] == "numbers"  # untouched latents keep theirs
    from saetools.labels import user_label_summary

    assert "2 imported from np.json" in user_label_summary(sae)


def test_label_maps_lists_csv_and_jsonl(tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"0": "first", "12": "twelfth"}))
    assert [(r["latent"], r["label"]) for r in read_explanations(mapping)] == [
        (0, "first"),
        (12, "twelfth"),
    ]
    goodfire = tmp_path / "goodfire.json"
    goodfire.write_text(json.dumps([{"index_in_sae": 4, "label": "Formal legal language"}]))
    assert read_explanations(goodfire)[0] == {"latent": 4, "label": "Formal legal language"}
    table = tmp_path / "labels.csv"
    table.write_text("latent,label,score\n2,low score,0.2\n2,high score,0.9\n9,other,\n")
    rows = read_explanations(table)
    assert [(r["latent"], r["label"]) for r in rows] == [(2, "high score"), (9, "other")]
    assert rows[0]["imported_score"] == 0.9
    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"latent": 1, "label": "one"}\n\n{"feature_id": 2, "explanation": "two"}\n')
    assert [r["label"] for r in read_explanations(lines)] == ["one", "two"]


def test_bad_label_files_fail_on_their_line(tmp_path):
    sae = random_sae(tmp_path / "sae", d_sae=64)
    table = tmp_path / "bad.csv"
    table.write_text("latent,label\n1,fine\n64,too far\n")
    message = cli_error("labels", "import", table, "--sae", sae)
    assert message == f"{table}:3: field 'latent': latent 64 out of range (the SAE has 64 latents)"
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"latent": 1, "label": "ok"}\n{"latent": "x1", "label": "no"}\n')
    with pytest.raises(SaetoolsError, match=r"bad.jsonl:2: field 'latent': not an integer"):
        read_explanations(lines)
    nolabel = tmp_path / "nolabel.json"
    nolabel.write_text(json.dumps([{"index": 1, "name": "?"}]))
    with pytest.raises(SaetoolsError, match=r"nolabel.json:1: no label"):
        read_explanations(nolabel)
    other = tmp_path / "labels.yaml"
    other.write_text("1: one\n")
    with pytest.raises(SaetoolsError, match="unknown label file type"):
        read_explanations(other)


def test_imported_labels_let_search_run_on_an_unlabelled_sae(tmp_path, monkeypatch):
    monkeypatch.setenv("SAETOOLS_HOME", str(fresh_home(tmp_path / "home")))
    sae = random_sae(tmp_path / "sae", d_sae=128, seed=2)
    texts = ["It rained all day in the city.", "Markets rallied after the report.", "A quiet walk."]
    store = saetools.encode(texts, tmp_path / "store", sae=sae)
    with pytest.raises(SaetoolsError, match="has no labels"):
        saetools.search(store, "weather")
    active = sorted(set(store.matrix.indices.tolist()))[:5]
    mapping = tmp_path / "labels.json"
    mapping.write_text(json.dumps({str(j): f"imported label {j}" for j in active}))
    from saetools.labels.imports import import_labels

    import_labels(mapping, sae)
    assert labels_of_store(store) == {j: f"imported label {j}" for j in active}
    frame = saetools.search(store, "imported label")
    assert len(frame) > 0 and set(frame["label"]) <= {f"imported label {j}" for j in active}
