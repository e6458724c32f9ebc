"""correlate: co-occurrence kernel, NPMI, filters, planted phrase / cross-field / column audits."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import saetools
from saetools.analyses.cooccurrence import iter_count_blocks, npmi, top_pairs
from saetools.analyses.correlate import correlate_matrices, same_passage_share
from saetools.cli import cli
from saetools.labels.similarity import LabelIndex
from saetools.store.activity import binarize

from .corpora import bbc_documents
from .helpers import cli_error

PHRASE = " I hope it is correct."


def random_binary(n, d, density, seed):
    m = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float32)
    m.data[:] = 1
    return m


def test_block_counts_equal_the_sparse_product():
    x, y = random_binary(400, 90, 0.08, 1), random_binary(400, 30, 0.2, 2)
    full = (x.T @ x).toarray()
    got = np.vstack([counts for _, counts in iter_count_blocks(x, block=16)])
    np.testing.assert_array_equal(got, np.triu(full, 1))
    got_xy = np.vstack([counts for _, counts in iter_count_blocks(x, y, block=7)])
    np.testing.assert_array_equal(got_xy, (x.T @ y).toarray())


def test_npmi_known_values():
    n = 100
    # independent: p(i,j) = p(i) p(j)
    assert npmi(np.array([25]), np.array([50]), np.array([50]), n)[0] == pytest.approx(0.0)
    assert npmi(np.array([30]), np.array([30]), np.array([30]), n)[0] == pytest.approx(1.0)
    assert npmi(np.array([0]), np.array([30]), np.array([30]), n)[0] == -1.0
    # every row: undefined, reported as 0 (no information)
    assert npmi(np.array([100]), np.array([100]), np.array([100]), n)[0] == 0.0
    value = npmi(np.array([10]), np.array([20]), np.array([40]), n)[0]
    assert value == pytest.approx(np.log(0.1 / 0.08) / -np.log(0.1))


def test_top_pairs_match_brute_force_and_honour_reject():
    x = random_binary(300, 60, 0.12, 3)
    counts = np.triu((x.T @ x).toarray(), 1)
    totals = np.asarray(x.sum(0)).ravel()
    scores = npmi(counts, totals[:, None], totals[None, :], 300)
    scores[counts < 4] = -9
    order = np.argsort(-scores, axis=None, kind="stable")[:15]
    expected = set(zip(*np.unravel_index(order, scores.shape), strict=True))
    i, j, joint, s = top_pairs(x, min_support=4, keep=15, block=8)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    np.testing.assert_array_equal(joint, counts[i, j])
    assert (np.diff(s) <= 1e-12).all()
    banned = int(i[0])
    i2, j2, _, _ = top_pairs(
        x, min_support=4, keep=15, block=8, reject=lambda a, b: (a == banned) | (b == banned)
    )
    assert banned not in set(i2) | set(j2) and len(i2) == 15


def test_same_passage_share_counts_near_peaks():
    active = sp.csr_matrix(np.array([[1, 1], [1, 1], [1, 1], [1, 0]], dtype=np.float32))
    starts = sp.csr_matrix(np.array([[11, 20], [101, 500], [1, 30], [5, 0]], dtype=np.float64))
    share = same_passage_share(active, starts, np.array([0]), np.array([1]), window=40)
    assert share[0] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def bbc():
    """300 BBC openings, 60 per topic, as (topics, texts)."""
    docs = bbc_documents(60, 300)
    return [t for t, _ in docs], [text for _, text in docs]


@pytest.fixture(scope="module")
def planted_store(bbc):
    """The BBC openings with a fixed phrase appended to every sports article."""
    topics, texts = bbc
    planted = [
        t + PHRASE if topic == "sports" else t for topic, t in zip(topics, texts, strict=True)
    ]
    return saetools.encode(planted, progress=False)


def test_phrase_planted_in_one_topic_pairs_with_a_topic_latent(bbc, planted_store):
    topics = np.array(bbc[0])
    sports = topics == "sports"
    frame = saetools.correlate(planted_store.folder, top=10, progress=False)
    active = binarize(planted_store.matrix).toarray() > 0

    def is_phrase(j):  # fires on (nearly) every planted document and hardly elsewhere
        on = active[:, j]
        return on[sports].mean() >= 0.9 and on[~sports].mean() <= 0.02

    def is_topic(j):  # a sports latent that is not the phrase itself
        on = active[:, j]
        return sports[on].mean() >= 0.9 and on[sports].mean() < 0.8

    found = [
        (row.latent_a, row.latent_b, row.npmi)
        for row in frame.itertuples()
        if (is_phrase(row.latent_a) and is_topic(row.latent_b))
        or (is_topic(row.latent_a) and is_phrase(row.latent_b))
    ]
    assert found, frame[["latent_a", "label_a", "latent_b", "label_b", "npmi"]]
    assert max(score for *_, score in found) > 0.5
    # the same-passage filter removed the phrase's own latents paired with each other
    assert not any(
        is_phrase(a) and is_phrase(b) for a, b in zip(frame.latent_a, frame.latent_b, strict=True)
    )
    assert frame["examples"].map(len).min() >= 1


def test_label_filter_removes_pairs_with_synonymous_labels(planted_store):
    matrix = planted_store.matrix
    plain = correlate_matrices(matrix, top=5, passage_chars=None)
    a, b = int(plain.latent_a[0]), int(plain.latent_b[0])
    labels = {a: "football match", b: "soccer game", 7: "tax rates", 8: "a piano concert"}
    index = LabelIndex(labels)
    assert index.pair_similarity(np.array([a]), np.array([b]))[0] > 0.7
    assert index.pair_similarity(np.array([7]), np.array([8]))[0] < 0.5
    filtered = correlate_matrices(matrix, top=5, label_index=index, max_label_similarity=0.7)
    pairs = set(zip(filtered.latent_a, filtered.latent_b, strict=True))
    assert (a, b) not in pairs and len(filtered) == 5
    unfiltered = correlate_matrices(matrix, top=5, label_index=index, max_label_similarity=None)
    assert (a, b) in set(zip(unfiltered.latent_a, unfiltered.latent_b, strict=True))


@pytest.fixture(scope="module")
def prompt_response_file(bbc, tmp_path_factory):
    """Records whose response ends with a fixed phrase exactly when the prompt is about sport."""
    topics, texts = bbc
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("xf") / "chat.jsonl"
    with open(path, "w") as fh:
        for k, (topic, text) in enumerate(zip(topics, texts, strict=True)):
            other = texts[rng.randrange(len(texts))][:150]
            response = "Here is a summary. " + other + (PHRASE if topic == "sports" else "")
            record = {"id": f"d{k}", "topic": topic, "prompt": text, "response": response}
            fh.write(json.dumps(record) + "\n")
    return path


def test_cross_field_audit_finds_the_response_phrase_after_sports_prompts(
    prompt_response_file, bbc
):
    frame = saetools.correlate(
        prompt_response_file, x_field="prompt", y_field="response", top=5, progress=False
    )
    assert frame.attrs["mode"] == "fields"
    x = saetools.encode(prompt_response_file, field="prompt", progress=False)
    y = saetools.encode(prompt_response_file, field="response", progress=False)
    sports = np.array(bbc[0]) == "sports"
    act_x, act_y = binarize(x.matrix).toarray() > 0, binarize(y.matrix).toarray() > 0
    top = frame.iloc[0]
    assert act_y[:, top.latent_b][sports].mean() >= 0.9  # the phrase, in responses
    assert act_y[:, top.latent_b][~sports].mean() <= 0.02
    assert sports[act_x[:, top.latent_a]].mean() >= 0.9  # a sports latent, in prompts
    assert top.npmi > 0.5


def test_column_audit_pairs_topic_latents_with_their_topic(prompt_response_file):
    frame = saetools.correlate(
        prompt_response_file, field="prompt", with_column="topic", top=15, progress=False
    )
    assert list(frame.columns[:3]) == ["latent", "label", "value"]
    assert len(set(frame["value"])) >= 4  # most topics have a latent of their own
    assert (frame["npmi"] > 0.4).all()


def test_correlate_cli_writes_csv_and_html(prompt_response_file, tmp_path):
    out, page = tmp_path / "pairs.csv", tmp_path / "pairs.html"
    result = CliRunner().invoke(
        cli,
        [
            "correlate",
            str(prompt_response_file),
            "--x-field",
            "prompt",
            "--y-field",
            "response",
            "--top",
            "4",
            "--out",
            str(out),
            "--html",
            str(page),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == 4 and {"latent_a", "latent_b", "npmi", "count_ab"} <= set(table.columns)
    assert "<mark>" in page.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--field", "prompt", "--with-column", "nope"], "field 'nope': missing"),
        (["--x-field", "prompt", "--y-field", "nope"], "field 'nope': missing"),
        (["--x-field", "prompt", "--y-field", "prompt"], "must differ"),
        (["--x-field", "prompt", "--y-field", "response", "--with-column", "topic"], "either"),
    ],
)
def test_correlate_bad_options_are_one_line_errors(prompt_response_file, args, message):
    assert message in cli_error("correlate", prompt_response_file, *args, "-q")


def test_correlate_error_is_printed_as_one_line_without_traceback(prompt_response_file):
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "saetools",
            "correlate",
            str(prompt_response_file),
            "--x-field",
            "prompt",
            "--y-field",
            "nope",
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: ") and "field 'nope': missing" in lines[0]
    )
