"""Feature pages: label scores, density, top documents with the firing span, co-occurring
latents and the histogram, checked against the store's matrix; the CLI's text and HTML."""

from __future__ import annotations

import json

import numpy as np
import pytest

import saetools
from saetools.analyses.feature import HISTOGRAM_BINS, feature_page
from saetools.errors import SaetoolsError

from .helpers import random_sae


@pytest.fixture(scope="module")
def token_store(tmp_path_factory, reader_bf16, example_texts):
    """A token-level store of 60 docstrings, read with the default reader and a random SAE whose
    labels carry scores (one also a Pearson correlation)."""
    folder = tmp_path_factory.mktemp("feature")
    sae = random_sae(folder / "sae", d_sae=256, k=8, labels={j: f"label {j}" for j in range(256)})
    rows = [
        {"latent": j, "label": f"label {j}", "source": "keywords", "score": 0.5} for j in range(256)
    ]
    rows[3] = {**rows[3], "source": "llm", "score": 0.75, "pearson": 0.6, "model": "m"}
    with open(sae / "labels.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return saetools.encode(
        [t[:400] for t in example_texts[:60]],
        out=folder / "store",
        reader=reader_bf16,
        sae=sae,
        progress=False,
    )


def test_feature_page_matches_the_matrix(token_store):
    store = token_store
    active = (store.matrix > 0).toarray()
    latent = int(np.argsort(-active.sum(axis=0))[5])
    page = feature_page(store, latent, top=4)
    column = store.matrix[:, latent].toarray().ravel()
    assert page.n_active == int(active[:, latent].sum()) and page.n_docs == 60
    assert page.density == pytest.approx(active[:, latent].mean())
    assert page.max_activation == pytest.approx(column.max())
    assert page.label == f"label {latent}" and page.label_info["score"] == 0.5
    assert page.examples["value"].tolist() == sorted(column[column > 0], reverse=True)[:4]
    for row in page.examples.itertuples(index=False):  # the marked span is where it peaked
        assert (row.start, row.end) == store.span(row.row, latent) and row.end > row.start
    counts, edges = page.histogram
    assert len(counts) == HISTOGRAM_BINS and counts.sum() == page.n_active
    assert edges[0] == pytest.approx(column[column > 0].min())
    from collections import Counter

    strongest = np.argsort(-column, kind="stable")[: min(50, page.n_active)]
    texts = store.docs["text"].to_numpy()
    peaks = Counter(
        " ".join(texts[r][slice(*store.span(int(r), latent))].split()) for r in strongest
    )
    peaks.pop("", None)
    assert dict(page.top_tokens) == dict(peaks.most_common(8)) and page.top_tokens
    first = page.cooccurring.iloc[0]
    both = (active[:, latent] & active[:, int(first["latent"])]).sum()
    assert first["share"] == pytest.approx(both / page.n_active)
    assert page.cooccurring["share"].is_monotonic_decreasing
    assert latent not in set(page.cooccurring["latent"])


def test_feature_page_shows_llm_label_scores_and_refuses_bad_latents(token_store):
    page = feature_page(token_store, 3)
    assert page.label_info["source"] == "llm" and page.label_info["pearson"] == 0.6
    from saetools.report.feature_html import label_scores_text

    assert label_scores_text(page.label_info) == "llm, held-out F1 0.75, Pearson 0.60"
    with pytest.raises(SaetoolsError, match="out of range"):
        feature_page(token_store, 256)


def test_feature_command_prints_and_writes_html(token_store, tmp_path):
    from click.testing import CliRunner

    from saetools.cli import cli

    active = (token_store.matrix > 0).toarray().sum(axis=0)
    latent = int(np.argmax(active))
    out = tmp_path / "page.html"
    result = CliRunner().invoke(
        cli, ["feature", str(token_store.folder), str(latent), "--top", "2", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"latent {latent}: label {latent}")
    assert f"fires in {active[latent]} of 60 documents" in result.output
    assert "  peaks on: '" in result.output
    assert result.output.count("[[") == 2  # two top documents, each with its span marked
    page = out.read_text()
    assert f"Latent {latent}:" in page and page.count("<mark>") == 2 and "<svg" in page


def test_browser_on_a_token_level_store_searches_by_label_and_refuses_steering(token_store):
    """The web app over a token-level store: property search by label with the peak span as the
    marked segment, no sliders (not steerable), a steer refused with the reason."""
    from saetools.browse import Browser, create_app

    client = create_app(Browser(token_store, device="cpu")).test_client()
    assert client.get("/api/info").get_json()["steerable"] is False
    data = client.get("/api/search", query_string={"q": "label 7"}).get_json()
    assert data["results"] and not data["steerable"] and data["query_features"]
    first = data["results"][0]
    marked = [s["text"] for s in first["segments"] if s["mark"]]
    row = int(token_store.docs.index[token_store.docs["id"] == first["id"]][0])
    start, end = token_store.span(row, first["latent"])
    assert marked == [token_store.docs["text"][row][start:end]]
    refused = client.get("/api/search", query_string={"q": "label 7", "steer": "7:1"})
    assert refused.status_code == 400
    assert "document-embedding reader" in refused.get_json()["error"]
    page = client.get(f"/api/feature/{first['latent']}").get_data(as_text=True)
    assert page.count("<mark>") >= 1
