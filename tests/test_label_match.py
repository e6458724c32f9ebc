"""Query matching on a label and its keywords, while the label shown stays the label."""

from __future__ import annotations

import numpy as np
import pytest

from saetools.labels import match_texts, match_texts_of_rows
from saetools.labels.similarity import LabelIndex, label_index_for

from .helpers import cli_error, fresh_home, random_sae, write_jsonl

# literal labels, as peak-token labels are: the keywords carry what the latent is about
ROWS = [
    {"latent": 0, "label": '"!"', "keywords": "excited, thrilled, love"},
    {"latent": 1, "label": "sorry", "keywords": "apologize, sorry, mistake, regret"},
    {"latent": 2, "label": "tax, rates", "keywords": "tax, rates"},
    {"latent": 3, "label": "SMTP, smtp, POP3", "keywords": "mail server, protocol, port"},
    {"latent": 4, "label": "the, a, of"},
    {"latent": 5, "label": "party, celebration"},  # closer to "excited" than a bare "!"
]


def test_match_texts_add_the_keywords_only_when_they_differ_from_the_label():
    assert match_texts(ROWS[0]) == ('"!"', "excited, thrilled, love")
    assert match_texts(ROWS[2]) == ("tax, rates",)  # keywords equal to the label: nothing added
    assert match_texts(ROWS[4]) == ("the, a, of",)
    assert sorted(match_texts_of_rows(ROWS)) == [0, 1, 2, 3]


def test_keywords_find_a_literal_label_and_the_label_is_what_is_shown():
    labels = {r["latent"]: r["label"] for r in ROWS}
    plain = LabelIndex(labels)
    matched = LabelIndex(labels, match_texts=match_texts_of_rows(ROWS))
    assert plain.key != matched.key  # separate cached embeddings
    assert len(matched.texts) == len(ROWS) + 3 and len(matched.vectors) == len(ROWS)
    best = matched.match("excited", top=1)
    assert best["latent"].tolist() == [0] and best["label"].tolist() == ['"!"']
    assert plain.match("excited", top=1)["latent"].tolist() == [5]
    sims_plain = plain.match("excited", top=None).set_index("latent")["similarity"]
    sims_matched = matched.match("excited", top=None).set_index("latent")["similarity"]
    assert sims_matched[0] > sims_plain[0] + 0.1
    assert sims_matched[5] == pytest.approx(sims_plain[5], abs=1e-3)  # no keywords: unchanged
    # a latent is as close as the closer of its texts: the label's own match is kept
    keyword_only = LabelIndex(labels, match_texts={1: ["apologize, sorry, mistake, regret"]})
    for query in ("sorry", "regret"):
        both = matched.match(query, top=None).set_index("latent")["similarity"][1]
        one = keyword_only.match(query, top=None).set_index("latent")["similarity"][1]
        label = plain.match(query, top=None).set_index("latent")["similarity"][1]
        assert both == pytest.approx(max(one, label), abs=1e-3)
    assert matched.match("email protocol", top=1)["label"].tolist() == ["SMTP, smtp, POP3"]
    # the label-similarity filter compares the shown labels, whatever they are matched on
    pairs = (np.array([0, 1]), np.array([5, 3]))
    np.testing.assert_allclose(
        matched.pair_similarity(*pairs), plain.pair_similarity(*pairs), atol=1e-3
    )


def test_a_pack_with_keywords_is_matched_on_them_until_a_better_label_wins(tmp_path):
    from saetools.labels import write_user_labels

    folder = random_sae(tmp_path / "sae", d_sae=8)
    write_jsonl(
        folder / "labels.jsonl", [{**r, "source": "peak-tokens", "score": 0.5} for r in ROWS]
    )
    index = label_index_for(folder)
    assert index.match("excited", top=1)["latent"].tolist() == [0]
    # a label made here that scores higher replaces the row, keywords included
    write_user_labels(
        folder, [{"latent": 0, "label": "tax forms", "source": "llm", "model": "m", "score": 0.9}]
    )
    index = label_index_for(folder)
    assert index.labels[0] == "tax forms" and index.texts[0] == "tax forms"
    assert index.match("excited", top=1)["latent"].tolist() == [5]


EXCITED = [
    "We are so thrilled to announce the winners, this is wonderful news!",
    "What a fantastic day, I can't wait to celebrate with everyone!",
    "Amazing! The team did it again and the fans are ecstatic!",
    "I'm absolutely delighted with the results, hooray!",
    "This is the best surprise ever, thank you so much!",
    "Wow, the concert was incredible and we loved every minute!",
]
TAXES = [
    "File form 1040 with the tax office before the April deadline.",
    "The income tax rate for this bracket is set by the revenue service.",
    "Deductions reduce taxable income reported on the annual return.",
    "Attach the W-2 statement to the federal tax return.",
    "Quarterly estimated taxes are due to the treasury four times a year.",
    "An audit checks the figures reported on a company's tax filing.",
]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("SAETOOLS_HOME", str(fresh_home(tmp_path / "home")))


@pytest.fixture(scope="module")
def context_store(tmp_path_factory, reader_bf16):
    """A store of a random SAE over twelve sentences: six excited, six about tax forms."""
    import saetools

    sae = random_sae(tmp_path_factory.mktemp("ctx") / "sae", d_sae=64, k=4)
    store = saetools.encode(EXCITED + TAXES, reader=reader_bf16, sae=sae, progress=False)
    return store, sae


def test_context_snippets_hold_the_text_before_each_peak(context_store):
    from saetools.labels.contexts import CONTEXT_BEFORE, context_snippets

    store, _ = context_store
    latents, snippets = context_snippets(store, top=3)
    examples = store.examples[store.examples["rank"] < 3]
    assert len(snippets) == len(examples) == len(latents)
    texts = store.docs["text"].to_numpy()
    for snippet, (row, start, end) in zip(
        snippets, examples[["row", "start", "end"]].itertuples(index=False), strict=True
    ):
        peak = " ".join(texts[row][start:end].split())
        assert peak in snippet and len(snippet) <= CONTEXT_BEFORE + (end - start) + 40


def test_context_vectors_are_unit_rows_and_round_trip_beside_the_sae(context_store, tmp_path):
    from saetools.errors import SaetoolsError
    from saetools.labels.contexts import (
        CONTEXTS_FILE,
        context_vectors,
        load_context_vectors,
        save_context_vectors,
    )

    store, _ = context_store
    vectors = context_vectors(store)
    fired = np.unique(store.examples["latent"].to_numpy())
    assert vectors.shape == (store.d_sae, 384)
    norms = np.linalg.norm(vectors, axis=1)
    np.testing.assert_allclose(norms[fired], 1.0, atol=1e-5)
    assert (norms[np.setdiff1d(np.arange(store.d_sae), fired)] == 0).all()
    save_context_vectors(tmp_path, vectors, "all-MiniLM-L6-v2")
    back = load_context_vectors(tmp_path, "all-MiniLM-L6-v2", store.d_sae)
    np.testing.assert_allclose(back, vectors, atol=1e-3)  # stored as float16
    assert load_context_vectors(tmp_path, "another-model", store.d_sae) is None
    assert load_context_vectors(tmp_path, "all-MiniLM-L6-v2", store.d_sae + 1) is None
    (tmp_path / CONTEXTS_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(SaetoolsError, match=CONTEXTS_FILE):
        load_context_vectors(tmp_path, "all-MiniLM-L6-v2", store.d_sae)


def test_contexts_let_a_literal_label_be_found_by_what_surrounds_its_firings():
    from saetools.errors import SaetoolsError
    from saetools.labels.similarity import CONTEXT_WEIGHT, default_embedder

    labels = {0: '"!"', 1: "party, celebration", 2: "tax, rates"}
    contexts = np.zeros((3, 384), dtype=np.float32)
    contexts[0] = default_embedder().embed(["we are so excited and thrilled, hooray"])[0]
    plain = LabelIndex(labels)
    mixed = LabelIndex(labels, contexts=contexts)
    assert plain.match("excited", top=1)["latent"].tolist() == [1]
    assert mixed.match("excited", top=1)["latent"].tolist() == [0]
    assert mixed.match("excited", top=1)["label"].tolist() == ['"!"']
    np.testing.assert_allclose(np.linalg.norm(mixed.match_vectors, axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(mixed.match_vectors[1:], mixed.vectors[1:])  # no context
    expected = (1 - CONTEXT_WEIGHT) * mixed.vectors[0] + CONTEXT_WEIGHT * contexts[0]
    np.testing.assert_allclose(
        mixed.match_vectors[0], expected / np.linalg.norm(expected), atol=1e-5
    )
    with pytest.raises(SaetoolsError, match="width 10 cannot be mixed"):
        LabelIndex(labels, contexts=np.ones((3, 10), dtype=np.float32))
    # the label-similarity filter compares labels, not contexts
    pairs = (np.array([0, 0]), np.array([1, 2]))
    np.testing.assert_allclose(
        mixed.pair_similarity(*pairs), plain.pair_similarity(*pairs), atol=1e-3
    )


def test_a_store_of_a_pack_with_contexts_matches_queries_with_them(context_store):
    from saetools.labels import label_index_of_store
    from saetools.labels.contexts import context_vectors, save_context_vectors

    store, sae = context_store
    write_jsonl(sae / "labels.jsonl", [{"latent": j, "label": f"x{j}"} for j in range(64)])
    before = label_index_of_store(store, required=True)
    assert before.match_vectors is before.text_vectors  # nothing mixed in
    save_context_vectors(sae, context_vectors(store), "all-MiniLM-L6-v2")
    after = label_index_of_store(store, required=True)
    fired = np.unique(store.examples["latent"].to_numpy())
    assert not np.allclose(after.match_vectors[fired], after.vectors[fired])
    np.testing.assert_array_equal(label_index_for(sae).match_vectors, after.match_vectors)


def test_labels_contexts_files_vectors_for_any_sae_and_they_win_over_shipped_ones(tmp_path):
    from click.testing import CliRunner

    from saetools.cli import cli
    from saetools.labels import label_index_of_store
    from saetools.labels.contexts import (
        context_vectors,
        load_context_vectors,
        save_context_vectors,
        user_contexts_path,
    )
    from saetools.labels.llm import labelling_store

    sae = random_sae(tmp_path / "sae", d_sae=64, k=4, labels={j: f"x{j}" for j in range(64)})
    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in EXCITED + TAXES])
    save_context_vectors(sae, np.zeros((64, 384), np.float32), "all-MiniLM-L6-v2")  # shipped
    store = labelling_store(sae, data, progress=False)
    shipped = label_index_of_store(store, required=True)
    np.testing.assert_array_equal(shipped.match_vectors, shipped.vectors)  # zero rows: no mix

    result = CliRunner().invoke(cli, ["labels", "contexts", str(sae), "--data", str(data), "-q"])
    assert result.exit_code == 0, result.output
    path = user_contexts_path(sae)
    fired = np.unique(store.examples["latent"].to_numpy())
    assert f"{len(fired):,} of 64 latents fire here" in result.output and str(path) in result.output
    made = load_context_vectors(path.parent, "all-MiniLM-L6-v2", 64)
    np.testing.assert_allclose(made, context_vectors(store), atol=1e-3)
    index = label_index_of_store(store, required=True)  # the new file makes a new index
    assert not np.allclose(index.match_vectors[fired], index.vectors[fired])
    np.testing.assert_array_equal(label_index_for(sae).match_vectors, index.match_vectors)
    assert "is an SAE: pass --data" in cli_error("labels", "contexts", sae, "-q")
