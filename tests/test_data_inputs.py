"""Data in: ids from an ``id`` field, folders of Parquet/JSONL shards, chat conversations with
the reader's chat template, datasets by name (``datasets``), DataFrames by their text column."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from saetools.corpus import load_hf_dataset, read_corpus
from saetools.errors import SaetoolsError
from tests.helpers import cli_error, write_jsonl


def test_records_with_an_id_field_keep_their_ids(tmp_path, capsys):
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"id": "q-7", "text": "one"}, {"id": 12, "text": "two"}]
    )
    assert [d.id for d in read_corpus(path).documents] == ["q-7", "12"]
    csv = tmp_path / "a.csv"
    csv.write_text("id,text\nalpha,first\nbeta,second\n")
    assert [d.id for d in read_corpus(csv).documents] == ["alpha", "beta"]
    plain = write_jsonl(tmp_path / "b.jsonl", [{"text": "one"}, {"text": "two"}])
    assert [d.id for d in read_corpus(plain).documents] == ["1", "2"]
    repeated = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "a"}, {"id": 1, "text": "b"}])
    assert [d.id for d in read_corpus(repeated).documents] == ["1", "2"]
    assert "values repeat" in capsys.readouterr().err


def test_a_folder_of_parquet_shards_reads_as_one_table(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame({"text": ["a1", "a2"]}).to_parquet(folder / "part-000.parquet")
    pd.DataFrame({"text": ["b1", "b2", "b3"]}).to_parquet(folder / "part-001.parquet")
    corpus = read_corpus(folder)
    assert corpus.texts == ["a1", "a2", "b1", "b2", "b3"]
    assert [d.id for d in corpus.documents] == ["1", "2", "3", "4", "5"]
    pd.DataFrame({"body": ["c1"]}).to_parquet(folder / "part-002.parquet")
    with pytest.raises(SaetoolsError, match=r"part-002.parquet: field 'text': no such column"):
        read_corpus(folder)


def test_a_folder_of_jsonl_shards_names_the_bad_shard_and_line(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_jsonl(folder / "00.jsonl", [{"text": "x"}, {"text": "y"}])
    write_jsonl(folder / "01.jsonl", [{"text": "z"}])
    corpus = read_corpus(folder)
    assert corpus.texts == ["x", "y", "z"] and corpus.documents[2].id == "3"
    (folder / "02.jsonl").write_text('{"text": "ok"}\n{"txt": "bad"}\n')
    with pytest.raises(SaetoolsError, match=r"02.jsonl:2: field 'text': missing"):
        read_corpus(folder)
    (folder / "03.parquet").write_bytes(b"")
    with pytest.raises(SaetoolsError, match="both .parquet and .jsonl"):
        read_corpus(folder)


def test_chat_conversations_use_the_readers_chat_template(tmp_path, reader_fp32):
    chat = [{"role": "user", "content": "Is it raining?"}, {"role": "assistant", "content": "Yes."}]
    path = write_jsonl(tmp_path / "chats.jsonl", [{"messages": chat}])
    rendered = read_corpus(path, "messages", render=reader_fp32.render_chat).texts[0]
    assert rendered == reader_fp32.tokenizer.apply_chat_template(chat, tokenize=False)
    assert "<|im_start|>user\nIs it raining?<|im_end|>" in rendered
    plain = read_corpus(path, "messages").texts[0]
    assert plain == "user: Is it raining?\n\nassistant: Yes."
    # one role only, as before
    assert read_corpus(path, "messages", role="assistant").texts == ["Yes."]


def test_datasets_by_name_through_the_datasets_package(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"id": f"d{i}", "body": f"text {i}"} for i in range(4)])
    dataset = load_hf_dataset(str(folder), split="train")
    corpus = read_corpus(dataset, "body")
    assert corpus.texts == [f"text {i}" for i in range(4)]
    assert [d.id for d in corpus.documents] == ["d0", "d1", "d2", "d3"]
    with pytest.raises(SaetoolsError, match=r"hf:.*field 'text': missing"):
        read_corpus(dataset)
    with pytest.raises(SaetoolsError, match=r"hf:.*nowhere.*cannot load the dataset"):
        load_hf_dataset(str(tmp_path / "nowhere"))


def test_encode_reads_a_dataset_by_name(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from click.testing import CliRunner

    from saetools.cli import cli
    from saetools.store.reader import open_store

    folder = tmp_path / "ds"
    folder.mkdir()
    write_jsonl(
        folder / "train.jsonl",
        [{"id": "a", "text": "The rain fell."}, {"id": "b", "text": "Markets rose."}],
    )
    out = tmp_path / "store"
    result = CliRunner().invoke(
        cli, ["encode", "--hf-dataset", str(folder), "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert open_store(out).docs["id"].tolist() == ["a", "b"]
    assert "give DATA or --hf-dataset" in cli_error("encode", "--out", tmp_path / "x")


def test_a_dataframe_is_read_by_its_text_column(tmp_path):
    import saetools

    frame = pd.DataFrame({"label": [0, 1], "text": ["It rained all day.", "Shares fell."]})
    store = saetools.encode(frame, tmp_path / "store")
    assert store.docs["text"].tolist() == ["It rained all day.", "Shares fell."]
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["n_docs"] == 2
