"""Reading documents from every supported format, and bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from saetools.corpus import read_corpus
from saetools.errors import InputError

from .helpers import write_jsonl


def test_jsonl_dotted_fields_and_ids(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"uid": "x1", "response": {"content": "first answer"}},
            {"uid": "x2", "response": {"content": "second answer"}},
        ],
    )
    corpus = read_corpus(path, "response.content", id_field="uid")
    assert [(d.id, d.text, d.line) for d in corpus.documents] == [
        ("x1", "first answer", 1),
        ("x2", "second answer", 2),
    ]


def test_chat_messages_by_role(tmp_path):
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": "It is 4."},
                    {
                        "role": "assistant",
                        "content": [{"type": "text", "text": "I hope it is correct."}],
                    },
                ]
            }
        ],
    )
    assert read_corpus(path, "messages", role="user").texts == ["What is 2+2?"]
    assert read_corpus(path, "messages", role="assistant").texts == [
        "It is 4.\n\nI hope it is correct."
    ]


def test_csv_tsv_parquet_and_text(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "body": ["alpha, with comma", "beta\nwith newline"]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.tsv", "d.parquet"):
        corpus = read_corpus(tmp_path / name, "body", id_field="id")
        assert corpus.texts == ["alpha, with comma", "beta\nwith newline"], name
        assert [d.id for d in corpus.documents] == ["a", "b"]
    (tmp_path / "d.txt").write_text("one\n\ntwo\n")
    corpus = read_corpus(tmp_path / "d.txt", warn=False)
    assert [(d.id, d.text) for d in corpus.documents] == [("1", "one"), ("3", "two")]
    assert corpus.skipped_empty == 1


def test_list_of_strings():
    assert read_corpus(["a", "b"]).texts == ["a", "b"]


def test_empty_documents_are_skipped_with_a_warning(tmp_path, capsys):
    path = write_jsonl(tmp_path / "e.jsonl", [{"text": "ok"}, {"text": "   "}, {"text": ""}])
    corpus = read_corpus(path)
    assert corpus.texts == ["ok"] and corpus.skipped_empty == 2
    assert "skipped 2 empty document(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content,match",
    [
        (b'{"text": "fine"}\n{"text": broken\n', r"b\.jsonl:2: malformed JSON"),
        (
            b'{"text": "fine"}\n{"body": "x"}\n',
            r"b\.jsonl:2: field 'text': missing \(record has: body\)",
        ),
        (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', r"b\.jsonl:2: not valid UTF-8"),
        (b'{"text": ["a", "list"]}\n', r"b\.jsonl:1: field 'text': expected text, found list"),
        (b"", r"b\.jsonl: no documents"),
        (b'{"text": "  "}\n', r"b\.jsonl: no documents"),
    ],
)
def test_bad_jsonl_names_file_line_and_field(tmp_path, content, match):
    (tmp_path / "b.jsonl").write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_corpus(tmp_path / "b.jsonl", warn=False)


def test_bad_csv_column_and_missing_file(tmp_path):
    (tmp_path / "c.csv").write_text("a,b\n1,2\n")
    with pytest.raises(
        InputError, match=r"c\.csv:1: field 'text': no such column \(columns: a, b\)"
    ):
        read_corpus(tmp_path / "c.csv")
    with pytest.raises(InputError, match=r"nope\.jsonl: no such file"):
        read_corpus(tmp_path / "nope.jsonl")


def test_hugging_face_dataset_folder(tmp_path):
    """A folder as ``datasets.Dataset.save_to_disk`` writes it: Arrow stream + state.json."""
    import json

    import pyarrow as pa

    folder = tmp_path / "ds"
    folder.mkdir()
    table = pa.table({"prompt": ["p1", "p2", "p3"], "answer": ["a1", "", "a3"]})
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "dataset_info.json").write_text("{}")
    (folder / "state.json").write_text(
        json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": None})
    )
    corpus = read_corpus(folder, "answer", warn=False)
    assert corpus.texts == ["a1", "a3"] and [d.line for d in corpus.documents] == [1, 3]
    with pytest.raises(InputError, match=r"ds: field 'text': no such column"):
        read_corpus(folder)
