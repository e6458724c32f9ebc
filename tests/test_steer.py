"""Steered search: query embeddings moved along SAE feature directions (document-embedding
stores), the embeddings cache, and the CLI's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import saetools
from saetools.analyses.steer import Steer, parse_steer, steer_embedding
from saetools.errors import SaetoolsError
from saetools.options import SearchOptions
from saetools.sae.models import SAEConfig, build_sae

from .corpora import bbc_documents
from .helpers import cli_error, random_sae, write_jsonl


def test_parse_steer_reads_ids_label_words_and_signs():
    assert parse_steer("123=+0.3") == Steer(123, 0.3)
    assert parse_steer("formal tone = -0.25") == Steer("formal tone", -0.25)
    assert parse_steer("a=b=2") == Steer("a=b", 2.0)
    assert parse_steer((7, 1)) == Steer(7, 1.0)
    for bad in ("123", "=0.3", "tone=much", "tone=+"):
        with pytest.raises(SaetoolsError, match="expected LATENT=DELTA"):
            parse_steer(bad)


def _small_sae(seed: int = 0, d_in: int = 32, d_sae: int = 128, k: int = 6):
    torch.manual_seed(seed)
    return build_sae(SAEConfig("topk", d_in, d_sae, k)).float()


def test_direct_steering_adds_the_decoder_rows():
    """x' = x + sum_j (t_j - h_j) w_j, with t_j = max(0, h_j + change_j)."""
    sae = _small_sae()
    x = torch.randn(32).numpy()
    h = sae.encode_dense(torch.as_tensor(x)[None])[0].detach()
    on = int(torch.nonzero(h)[0])
    off = int(torch.nonzero(h == 0)[0])
    edit = steer_embedding(sae, x, {off: 2.0, on: -100.0})
    expected = x + (2.0 * sae.W_dec[off] - h[on] * sae.W_dec[on]).detach().numpy()
    np.testing.assert_allclose(edit.steered, expected / np.linalg.norm(expected), atol=1e-5)
    assert edit.target[on] == 0 and edit.target[off] == pytest.approx(2.0)
    assert edit.fidelity == pytest.approx(float(edit.original @ edit.steered), abs=1e-6)
    unchanged = steer_embedding(sae, x, {})
    np.testing.assert_allclose(unchanged.steered, unchanged.original, atol=1e-6)
    assert unchanged.fidelity == pytest.approx(1.0, abs=1e-6)


def test_iterative_steering_reaches_added_latents_more_often_than_direct():
    """Adding a latent outside the query's top k: the optimised edit re-encodes with the latent
    active (at half its target or more) at least as often as the direct edit, and in most
    cases."""
    sae = _small_sae(seed=1)
    rng = np.random.default_rng(0)
    reached = {"direct": 0, "iterative": 0}
    trials = 12
    for _ in range(trials):
        x = rng.normal(size=32).astype(np.float32)
        h = sae.encode_dense(torch.as_tensor(x)[None])[0].detach().numpy()
        j = int(rng.choice(np.flatnonzero(h == 0)))
        change = float(np.sort(h)[-1])
        for method in reached:
            edit = steer_embedding(sae, x, {j: change}, method=method)
            reached[method] += bool(edit.achieved[j] >= 0.5 * edit.target[j])
    assert reached["iterative"] >= reached["direct"]
    assert reached["iterative"] >= trials // 2, reached
    # the SAE is left as it was: trainable, with no gradient on it
    assert all(p.requires_grad and p.grad is None for p in sae.parameters())


@pytest.fixture(scope="module")
def news_store(tmp_path_factory):
    """A MiniLM store of 160 BBC news openings (32 per topic) and their topics."""
    docs = bbc_documents(32, 300, seed=4)
    folder = tmp_path_factory.mktemp("steer")
    data = write_jsonl(
        folder / "news.jsonl",
        [{"id": f"d{k}", "text": text} for k, (_, text) in enumerate(docs)],
    )
    saetools.encode(data, out=folder / "store", reader="minilm", device="cpu", progress=False)
    return saetools.open_store(folder / "store"), np.array([topic for topic, _ in docs])


def _topic_latent(store, topics, topic: str) -> int:
    """The latent whose active documents are most often of ``topic`` (>= 8 of them)."""
    active = (store.matrix > 0).tocsc()
    counts = np.asarray(active.sum(axis=0)).ravel()
    on_topic = np.asarray(active[topics == topic].sum(axis=0)).ravel()
    precision = np.where(counts >= 8, on_topic / np.maximum(counts, 1), 0)
    return int(np.argmax(precision))


def test_steering_towards_a_topic_feature_brings_that_topic_up(news_store):
    """A sport query steered along a technology latent: more technology articles in the top 10
    as delta grows, the latent active in more of them, the fidelity falling; delta 0 ranks as
    the plain embedding search."""
    store, topics = news_store
    tech = _topic_latent(store, topics, "tech")
    query = "the football team won the league match"
    plain = saetools.search(store, query, dense=True, device="cpu", progress=False)
    assert (plain["was"] == plain["rank"]).all()
    assert (topics[plain["row"]] == "sports").mean() >= 0.7
    assert plain.attrs["query_features"] and plain.attrs["steers"] == []
    same = saetools.search(store, query, steer=[f"{tech}=0"], device="cpu", progress=False)
    assert same["id"].tolist() == plain["id"].tolist()
    shares, active, fidelity = [], [], []
    for delta in (0.5, 1.0, 2.0):
        frame = saetools.search(store, query, steer=[f"{tech}=+{delta}"], progress=False)
        shares.append((topics[frame["row"]] == "tech").mean())
        active.append((store.matrix[frame["row"].to_numpy(), tech].toarray() > 0).mean())
        fidelity.append(frame.attrs["fidelity"])
        assert frame.attrs["steers"][0]["latent"] == tech
    assert shares[-1] >= (topics[plain["row"]] == "tech").mean() + 0.3, shares
    assert active[-1] > active[0] or active[0] == 1.0, active
    assert fidelity[0] > fidelity[1] > fidelity[2], fidelity


def test_steering_away_from_a_query_feature_lowers_it(news_store):
    """Removing the query feature that most of the top 10 share: fewer of them have it."""
    store, _ = news_store
    query = "the football team won the league match"
    plain = saetools.search(store, query, dense=True, progress=False)
    rows = plain["row"].to_numpy()
    top = max(
        plain.attrs["query_features"],
        key=lambda f: (store.matrix[rows, f["latent"]].toarray() > 0).sum(),
    )
    steered = saetools.search(
        store, query, steer=[f"{top['latent']}=-{2 * top['strength']:.2f}"], progress=False
    )
    before = (store.matrix[rows, top["latent"]].toarray() > 0).sum()
    after = (store.matrix[steered["row"].to_numpy(), top["latent"]].toarray() > 0).sum()
    assert before >= 5 and after < before, (before, after)
    assert steered.attrs["steers"][0]["target"] == 0.0


def test_embeddings_are_cached_beside_the_store_and_checked(news_store):
    from saetools.store.embeddings import EMBEDDINGS_FILE, document_embeddings

    store, _ = news_store
    reader = store.open_reader(device="cpu")
    first = document_embeddings(store, reader)
    path = store.folder / EMBEDDINGS_FILE
    assert path.exists() and first.shape == (len(store), 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=2e-3)
    stamp = path.stat().st_mtime_ns
    again = document_embeddings(store, reader)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(first, again)
    view = store.select_rows(np.arange(10)[::-1])  # other documents: not served from the file
    part = document_embeddings(view, reader)
    np.testing.assert_allclose(part, first[np.arange(10)[::-1]], atol=2e-3)


def test_steering_label_words_pick_the_closest_label_and_the_cli_prints_it(news_store):
    from click.testing import CliRunner

    from saetools.cli import cli
    from saetools.labels import labels_of_store

    store, _ = news_store
    labels = labels_of_store(store)
    latent = next(j for j in np.argsort(-store.matrix.getnnz(axis=0)) if labels.get(int(j)))
    words = labels[int(latent)]
    result = CliRunner().invoke(
        cli,
        ["search", str(store.folder), "new phone", "--steer", f"{words}=+1", "--top", "3", "-q"],
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        cli, ["search", str(store.folder), "new phone", "--steer", f"{words}=+1", "--top", "3"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"steer {latent}: " in out and f"(from {words!r})" in out
    assert "query features" in out and "fidelity cos(query, steered query)" in out
    ranked = [line for line in out.splitlines() if line.startswith("    ") and "  d" in line]
    assert len(ranked) == 3


def test_steering_is_refused_on_token_level_stores_and_bad_steers(
    news_store, tmp_path, reader_bf16
):
    store, _ = news_store
    tokens = saetools.encode(
        ["A short text.", "Another one here."],
        out=tmp_path / "tokens",
        reader=reader_bf16,
        sae=random_sae(tmp_path / "sae"),
        progress=False,
    )
    message = cli_error("search", tokens.folder, "errors", "--steer", "3=+1")
    assert "document-embedding reader" in message and "steered search" in message
    assert "out of range" in cli_error("search", store.folder, "x", "--steer", "99999=1")
    assert "expected LATENT=DELTA" in cli_error("search", store.folder, "x", "--steer", "5")
    with pytest.raises(SaetoolsError, match="drop --like"):
        saetools.search(store, None, options=SearchOptions(like="x", steer=["1=1"]))
