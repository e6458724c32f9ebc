"""Diff rows as properties: latents that fire together at the same places are grouped; the
similarity, the clustering, the grouped diff on real stores, and its outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from saetools.analyses.grouping import (
    assign_groups,
    cluster_similar,
    latent_similarity,
    similarity_from_counts,
    union_active,
)
from tests.corpora import bbc_documents


def csr(rows):
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def test_similarity_counts_only_agreement_at_the_same_place():
    # 4 latents over 4 documents of A and 4 of B
    a = csr([[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]])
    b = csr([[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    # peaks (1 + character offset): latents 0 and 1 at the same place, 2 far away
    peaks_a = csr([[1, 6, 500, 0], [11, 11, 900, 0], [0, 0, 0, 3], [0, 0, 0, 3]])
    peaks_b = csr([[1, 1, 700, 0], [1, 30, 800, 0], [0, 0, 0, 3], [0, 0, 0, 0]])
    tau = np.full(4, 0.5)
    sim = latent_similarity(a, b, np.arange(4), tau, peaks_a, peaks_b, chars=40)
    assert sim[0, 1] == pytest.approx(1.0)
    assert sim[0, 2] == pytest.approx(0.0)  # same documents, other places
    assert sim[0, 3] == 0.0
    jaccard = latent_similarity(a, b, np.arange(4), tau)  # no positions: plain Jaccard
    assert jaccard[0, 2] == pytest.approx(1.0) and jaccard[0, 3] == 0.0
    assert cluster_similar(sim, 0.5).tolist() == [0, 0, 1, 2]
    # one shared place out of four documents
    peaks_b2 = csr([[1, 400, 700, 0], [1, 300, 800, 0], [0, 0, 0, 3], [0, 0, 0, 0]])
    peaks_a2 = csr([[1, 300, 500, 0], [11, 11, 900, 0], [0, 0, 0, 3], [0, 0, 0, 3]])
    sim2 = latent_similarity(a, b, np.arange(4), tau, peaks_a2, peaks_b2, chars=40)
    assert sim2[0, 1] == pytest.approx(0.25)
    # thresholds decide activity
    assert union_active(a, [0, 3], [0.5, 0.5]).tolist() == [True, True, True, True]
    assert union_active(a, [0, 3], [0.5, 2.0]).tolist() == [True, True, False, False]


def test_similarity_from_counts_equals_the_similarity_of_the_matrices():
    rng = np.random.default_rng(4)
    values = [rng.random((60, 12)) * (rng.random((60, 12)) < 0.4) for _ in range(2)]
    a, b = (sp.csr_matrix(v.astype(np.float32)) for v in values)
    starts = [rng.integers(0, 200, (60, 12)) for _ in range(2)]
    peaks_a, peaks_b = (
        sp.csr_matrix(np.where(v > 0, p + 1, 0).astype(np.float64))
        for v, p in zip(values, starts, strict=True)
    )
    latents, tau = np.array([3, 0, 7, 5, 11]), np.array([0.2, 0.5, 0.1, 0.3, 0.6])
    expected = latent_similarity(a, b, latents, tau, peaks_a, peaks_b, chars=40, floor=0.1)
    active = [v[:, latents] > tau for v in values]
    near = [np.abs(p[:, latents][:, :, None] - p[:, latents][:, None, :]) <= 40 for p in starts]
    sizes = sum(x.sum(0) for x in active)
    both = sum(x.T.astype(int) @ x.astype(int) for x in active)
    together = sum(
        np.einsum("di,dj,dij->ij", x * 1, x * 1, n * 1) for x, n in zip(active, near, strict=True)
    )
    got = similarity_from_counts(latents, sizes, both, together, 0.1)
    assert np.array_equal(got, expected)
    assert 0 < (got[np.triu_indices(5, 1)] > 0).sum() < 10  # some pairs similar, not all


def test_only_significant_latents_of_one_direction_are_grouped():
    a = csr([[0, 0, 1, 1]] * 10 + [[0, 0, 0, 0]] * 10)
    b = csr([[1, 1, 0, 0]] * 10 + [[0, 0, 0, 0]] * 10)
    frame = pd.DataFrame(
        {
            "latent": [0, 1, 2, 3],
            "significant": [True, True, True, False],
            "direction": ["B>A", "B>A", "A>B", "A>B"],
            "threshold": [0.5] * 4,
        }
    )
    grouped = assign_groups(frame, a, b, min_similarity=0.5)
    assert grouped["group"].tolist() == [0, 0, 1, 2]


@pytest.fixture(scope="module")
def opener_pair():
    """B: news openings, each prefixed with one fixed sentence; A: the same kind of text."""
    docs = [text for _, text in bbc_documents(40, max_chars=220, seed=3)]
    a, b = docs[:100], docs[100:200]
    opener = "Let me solve this step by step. "
    return a, [opener + t for t in b], opener


def test_a_planted_sentence_is_one_property_of_several_latents(opener_pair, tmp_path_factory):
    import saetools

    a, b, opener = opener_pair
    latents = saetools.diff(a, b, by="latent", progress=False)
    properties = saetools.diff(a, b, progress=False)
    up_latents = latents[(latents["direction"] == "B>A") & latents["significant"]]
    up_props = properties[(properties["direction"] == "B>A") & properties["significant"]]
    assert len(up_props) < len(up_latents)
    assert int(properties["size"].sum()) == len(latents)
    top = up_props.iloc[0]
    assert top["size"] >= 2
    assert top["freq_b"] > 0.9 and top["freq_a"] < 0.1  # the best member's
    assert top["any_freq_b"] >= top["freq_b"] and top["any_freq_a"] >= top["freq_a"]
    # the members of the top property peak inside the planted sentence
    spans = [start for example in top["examples_b"] for start, _ in example["spans"]]
    assert len(spans) >= 2 * len(top["examples_b"])
    inside = sum(start < len(opener) for start in spans) / len(spans)
    assert inside >= 0.8, inside
    # the same latents, one row each, without grouping
    members = set(top["members"])
    by_latent = latents.set_index("latent")
    assert (by_latent.loc[list(members), "group"] == by_latent.loc[top["latent"], "group"]).all()
    # groups never mix directions
    for row in properties.itertuples():
        assert set(by_latent.loc[row.members, "direction"]) == {row.direction}
    # grouping off: one row per latent
    single = saetools.diff(a, b, group_similarity=1.0, progress=False)
    assert len(single[single["significant"]]) >= len(up_props)


def test_grouped_outputs_show_the_other_members(opener_pair, tmp_path):
    import json

    from click.testing import CliRunner

    from saetools.cli import cli
    from tests.helpers import write_jsonl

    a, b, _ = opener_pair
    path_a = write_jsonl(tmp_path / "a.jsonl", [{"text": t} for t in a])
    path_b = write_jsonl(tmp_path / "b.jsonl", [{"text": t} for t in b])
    out, page = tmp_path / "diff.jsonl", tmp_path / "diff.html"
    result = CliRunner().invoke(
        cli, ["diff", str(path_a), str(path_b), "--out", str(out), "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert "properties" in result.output and "more latent" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"group", "size", "members", "member_labels"} <= set(rows[0])
    assert any(r["size"] > 1 for r in rows)
    html = page.read_text()
    assert "<details><summary>" in html
    by_latent = tmp_path / "latents.csv"
    result = CliRunner().invoke(
        cli, ["diff", str(path_a), str(path_b), "--by", "latent", "--out", str(by_latent), "-q"]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(by_latent)
    assert "group" in frame and "members" not in frame
    assert len(frame) == sum(r["size"] for r in rows)
