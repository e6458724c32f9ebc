"""search: scoring arithmetic, planted property retrieval (average precision), --like, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score

import saetools
from saetools.analyses.search import Searcher, query_weights

from .corpora import planted_apologies
from .helpers import cli_error
from .test_cli import run_cli


def test_scores_are_the_weighted_sum_of_scale_normalised_activations():
    dense = np.array([[2.0, 0, 1.0], [4.0, 3.0, 0], [0, 1.5, 0.5], [0, 0, 0]], np.float32)
    searcher = Searcher(sp.csr_matrix(dense))
    np.testing.assert_allclose(searcher.scale, [4.0, 3.0, 1.0])
    scores = searcher.scores(np.array([0, 1]), np.array([1.0, 0.5]))
    np.testing.assert_allclose(scores, [0.5, 1.0 + 0.5, 0.25, 0.0], rtol=1e-6)
    rows, values = searcher.top(np.array([0, 1]), np.array([1.0, 0.5]), 10)
    assert rows.tolist() == [1, 0, 2]  # row 3 scores 0 and is not returned
    np.testing.assert_allclose(values, [1.5, 0.5, 0.25])
    np.testing.assert_allclose(
        searcher.contributions(1, np.array([0, 1]), np.array([1.0, 0.5])), [1.0, 0.5]
    )


def test_query_weights_keep_close_matches_and_trust_scored_labels():
    chosen = pd.DataFrame({"latent": [486, 4468, 7, 9], "similarity": [0.60, 0.52, 0.50, 0.30]})
    latents, weights = query_weights(chosen, {486: 0.25, 4468: 0.5})
    # 0.50 < 0.85 * 0.60: left out, like every looser match
    assert latents.tolist() == [486, 4468]
    np.testing.assert_allclose(weights, [0.60**4 * 0.25, 0.52**4 * 0.5])
    assert weights[1] > weights[0]  # the better-detecting label outweighs the closer one
    _, unscored = query_weights(chosen.head(1), {})
    np.testing.assert_allclose(unscored, [0.60**4 * 0.5])  # no score: trusted at 0.5


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory):
    """600 news openings; 30 (5%) carry an apology, written six different ways. Articles that
    already apologise (news does: "Blunkett sorry over ...") are left out, so that the planted
    documents are exactly the ones with the property."""
    path = tmp_path_factory.mktemp("search") / "docs.jsonl"
    with open(path, "w") as fh:
        for record in planted_apologies(600, 30):
            fh.write(json.dumps(record) + "\n")
    return path


AVERAGE_PRECISION: dict[str, float] = {}


def marks_an_apology(snippet: str) -> bool:
    """True when the ``[[marked]]`` span of a snippet is within an apology word."""
    at = snippet.find("[[")
    plain = snippet.replace("[[", "").replace("]]", "")
    return bool(re.search(r"polog|orry", plain[max(0, at - 8) : at + 12]))


def average_precision(frame: pd.DataFrame, truth: pd.DataFrame) -> float:
    """AP of the full ranking (documents not returned are ranked last)."""
    score = dict(zip(frame["id"], frame["score"], strict=True))
    ranked = truth["id"].map(lambda i: score.get(i, -1.0))
    return average_precision_score(truth["planted"], ranked)


@pytest.mark.parametrize("query", ["apology", "apologises to the user", "sorry"])
def test_planted_property_is_retrieved_with_high_average_precision(planted_file, query):
    truth = pd.read_json(planted_file, lines=True)
    frame = saetools.search(planted_file, query, id_field="id", top=600, progress=False)
    AVERAGE_PRECISION[query] = ap = average_precision(frame, truth)
    assert ap >= 0.65, ap  # each phrasing (16 phrasing x sample cases measured: 0.75-0.95)
    best = frame.head(10)
    assert best["id"].isin(truth[truth["planted"]]["id"]).mean() >= 0.7
    # the marked span is where the matching latent peaked: in or next to an apology word
    assert best["snippet"].map(marks_an_apology).mean() >= 0.6


def test_mean_average_precision_over_phrasings_reaches_the_target():
    if len(AVERAGE_PRECISION) < 3:
        pytest.skip("needs the three phrasings above in the same run")
    assert np.mean(list(AVERAGE_PRECISION.values())) >= 0.8, AVERAGE_PRECISION


def test_like_example_retrieves_the_same_property(planted_file):
    truth = pd.read_json(planted_file, lines=True)
    # an example in other words than any planted apology; it is matched on all of its latents,
    # so an example that is only an apology works best ("for the delay" would also pull in
    # articles about delays: AP 0.23 measured)
    frame = saetools.search(
        planted_file,
        like="Sorry about that, my apologies.",
        id_field="id",
        top=300,
        progress=False,
    )
    assert average_precision(frame, truth) >= 0.6
    assert frame.attrs["latents"] and frame.attrs["like"]


def test_search_cli_table_and_outputs(planted_file, tmp_path):
    out, page = tmp_path / "hits.jsonl", tmp_path / "hits.html"
    run = run_cli(
        "search",
        planted_file,
        "apologises",
        "--id-field",
        "id",
        "--top",
        "5",
        "--out",
        out,
        "--html",
        page,
    )
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["score"] >= rows[-1]["score"] and {"id", "score"} <= set(rows[0])
    assert "<mark>" in page.read_text() and "apologises" in run.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give a query or --like"),
        (["x", "--like", "y"], "give a query or --like"),
        (["x", "--top", "0"], "--top must be at least 1"),
        (["zzqq", "--min-similarity", "0.99"], "closest labels"),
    ],
)
def test_search_bad_input_is_a_one_line_error(planted_file, args, message):
    # --id-field as above, so the store encoded there is reused
    assert message in cli_error("search", planted_file, *args, "--id-field", "id", "-q")


def test_search_error_is_printed_as_one_line_without_traceback(planted_file):
    run = run_cli("search", planted_file, "-q")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == ["error: give a query or --like TEXT (one of them)"]
