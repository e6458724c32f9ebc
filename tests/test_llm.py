"""The LLM path against a real OpenAI-compatible server (saetools serve, SmolLM2-135M) on
127.0.0.1: client caching, retries and accounting, faults through a proxy, labels with
fidelity scores, diff hypotheses, search reranking. SmolLM2 writes poor prose: these tests
assert the plumbing (parsing, caching, retries, counting, scoring arithmetic), not the text."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import saetools
from saetools.analyses.hypotheses import parse_hypotheses
from saetools.analyses.rerank import parse_rating
from saetools.labels import load_labels, user_labels_path, write_user_labels
from saetools.labels.llm import fidelity, parse_label, parse_yes_no, select_latents
from saetools.llm import LLMClient, LLMError

from .conftest import ROOT
from .llm_server import FaultProxy, free_port, start_server
from .test_cli import run_cli

EXAMPLES = ROOT / "examples"
HELLO = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture(scope="module")
def server():
    """``saetools serve`` in a subprocess for the whole module."""
    process, base_url = start_server()
    yield base_url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def proxy(server):
    """A fault-injecting proxy in front of the server."""
    fault = FaultProxy(server, hang_s=3.0)
    yield fault
    fault.close()


def usage_line(stderr: str) -> tuple[int, int, int]:
    """(requests, cached, new prompt tokens) from the ``LLM: ...`` line a command prints."""
    match = re.search(r"LLM: (\d+) requests \((\d+) cached\), ([\d,]+) prompt", stderr)
    assert match, stderr
    return int(match.group(1)), int(match.group(2)), int(match.group(3).replace(",", ""))


def client_for(base_url, tmp_path, **options) -> LLMClient:
    options.setdefault("backoff", 0.05)
    return LLMClient(base_url, "smollm2", cache_dir=tmp_path / "cache", **options)


# --- parsing and arithmetic on known inputs ---------------------------------------------------


def test_parsers_accept_the_formats_and_reject_the_rest():
    assert parse_label("LABEL: apologies\nDESCRIPTION: the writer says sorry") == (
        "apologies",
        "the writer says sorry",
    )
    assert parse_label("Apologies and regret") == ("Apologies and regret", "")
    for bad in ("", "I'm sorry, I cannot help with that.", "word " * 20):
        with pytest.raises(ValueError):
            parse_label(bad)
    assert parse_yes_no("No, the text does not.") == 0
    assert parse_yes_no("Yes.") == 1
    with pytest.raises(ValueError):
        parse_yes_no("The text talks about files.")
    assert parse_rating("I would say 7 out of 10") == 7.0
    with pytest.raises(ValueError):
        parse_rating("high")
    found = parse_hypotheses(
        "H: B talks about networks | latents: 12, 99, 7\nH: B is shorter | latents: 3",
        allowed={12, 7, 3},
        n=5,
    )
    assert found == [
        {"hypothesis": "B talks about networks", "latents": [12, 7]},
        {"hypothesis": "B is shorter", "latents": [3]},
    ]
    with pytest.raises(ValueError):
        parse_hypotheses("- [12] a river, stream (A 52%, B 23%)", allowed={12}, n=3)


def test_fidelity_arithmetic_on_known_predictions():
    predicted = np.array([1, 1, 0, 0, 1, 0])
    truth = np.array([1, 0, 1, 0, 1, 0])
    values = np.array([0.9, 0.0, 0.5, 0.0, 1.0, 0.0])
    stats = fidelity(predicted, truth, values)
    assert stats["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert stats["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert stats["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert stats["pearson"] == pytest.approx(np.corrcoef(predicted, values)[0, 1], abs=1e-4)
    assert fidelity(np.zeros(4), np.array([1, 0, 1, 0]), np.zeros(4))["f1"] == 0.0


def test_user_labels_merge_and_the_best_scored_label_wins(tmp_path, monkeypatch, example_sae):
    monkeypatch.setenv("SAETOOLS_HOME", str(tmp_path))
    shipped = load_labels(example_sae)
    write_user_labels(
        example_sae,
        [
            {"latent": 1, "label": "weak llm label", "source": "llm", "model": "m", "score": 0.0},
            {"latent": 2, "label": "strong llm label", "source": "llm", "model": "m", "score": 0.9},
        ],
    )
    write_user_labels(  # a rerun replaces the rows of the same latent, source and model
        example_sae,
        [{"latent": 2, "label": "newer label", "source": "llm", "model": "m", "score": 0.95}],
    )
    rows = [json.loads(x) for x in user_labels_path(example_sae).read_text().splitlines()]
    assert [(r["latent"], r["label"]) for r in rows] == [(1, "weak llm label"), (2, "newer label")]
    labels = load_labels(example_sae)
    assert labels[2] == "newer label"
    if 1 in shipped:
        assert labels[1] == shipped[1]  # a keyword label scoring above 0 beats an F1-0 label


# --- the client against the real server -------------------------------------------------------


def test_client_counts_tokens_and_a_rerun_hits_the_cache(server, tmp_path):
    client = client_for(server, tmp_path)
    first = client.complete(HELLO, max_tokens=8)
    assert first.error is None and first.text and not first.cached
    assert client.usage.prompt_tokens > 5 and 0 < client.usage.completion_tokens <= 8
    again = client_for(server, tmp_path)
    second = again.complete(HELLO, max_tokens=8)
    assert second.cached and second.text == first.text
    assert again.usage.prompt_tokens == 0 and again.usage.cached == 1
    other = again.complete(HELLO, max_tokens=9)  # any change of the request is a new request
    assert not other.cached and again.usage.prompt_tokens > 0


def test_http_500_and_timeouts_are_retried_then_succeed(proxy, tmp_path):
    client = client_for(proxy.base_url, tmp_path, timeout=1.0, retries=3)
    proxy.plan = ["500", "hang"]
    result = client.complete(HELLO, max_tokens=8)
    assert result.error is None and result.text
    assert proxy.seen == 3 and client.usage.failures == 0


def test_malformed_reply_is_retried_then_recorded_without_aborting(proxy, tmp_path):
    client = client_for(proxy.base_url, tmp_path, retries=2, concurrency=1)

    def needs_digits(text: str) -> str:
        if "§" in text:
            raise ValueError("not the requested format")
        return text

    proxy.plan = ["garbage"]  # one bad reply, then a good one
    fixed = client.complete(HELLO, needs_digits, max_tokens=8)
    assert fixed.error is None and fixed.value and proxy.seen == 2
    assert client.usage.retries == 1

    proxy.plan = ["garbage"] * 3  # the first job's three tries all come back malformed
    proxy.seen = 0
    jobs = [
        {"messages": [{"role": "user", "content": "Say one."}], "max_tokens": 4},
        {"messages": [{"role": "user", "content": "Say two."}], "max_tokens": 4},
    ]
    results = client.map(jobs, needs_digits)
    assert results[0].value is None and "requested format" in results[0].error
    assert results[1].value and results[1].error is None  # the run went on
    assert client.usage.failures == 1 and proxy.seen == 4


def test_server_down_is_a_clear_error(tmp_path):
    client = client_for(f"http://127.0.0.1:{free_port()}/v1", tmp_path, retries=1)
    result = client.complete(HELLO, max_tokens=4)
    assert result.value is None and "unavailable after 2 tries" in result.error
    with pytest.raises(LLMError, match="unavailable"):
        client.map([{"messages": HELLO, "max_tokens": 4}])
    run = run_cli(
        "diff",
        EXAMPLES / "a.jsonl",
        EXAMPLES / "b.jsonl",
        "--hypotheses",
        "2",
        "--llm-base-url",
        f"http://127.0.0.1:{free_port()}/v1",
        "-q",
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "unavailable" in run.stderr.strip().splitlines()[-1]


def test_no_llm_configured_is_a_one_line_error(monkeypatch):
    for name in (
        "SAETOOLS_LLM_BASE_URL",
        "OPENAI_BASE_URL",
        "SAETOOLS_LLM_API_KEY",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LLMError, match="no LLM configured"):
        LLMClient()


# --- the commands end to end ------------------------------------------------------------------


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
def test_label_command_writes_scored_labels_and_a_rerun_costs_nothing(server, tmp_path):
    store = tmp_path / "store"
    assert run_cli("encode", EXAMPLES / "a.jsonl", "--out", store, "-q").returncode == 0
    args = (
        "label",
        store,
        "--latents",
        "top:1",
        "--candidates",
        "2",
        "--llm-base-url",
        server,
        "-q",
    )
    env = {"SAETOOLS_LLM_CACHE_DIR": str(tmp_path / "llm-cache")}
    dry = run_cli(*args, "--dry-run", env=env)
    assert dry.returncode == 0 and "LLM job:" in dry.stderr and "new requests" in dry.stderr
    assert not (tmp_path / "llm-cache").exists()  # a dry run asks nothing
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    requests, cached, new_tokens = usage_line(first.stderr)
    assert requests > 1 and cached < requests and new_tokens > 0
    sae = json.loads((store / "manifest.json").read_text())["sae"]["path"]
    asked = set(select_latents(saetools.open_store(store), "top:1"))
    rows = [json.loads(x) for x in user_labels_path(sae).read_text().splitlines()]
    rows = [r for r in rows if r["latent"] in asked and r["model"] == "smollm2-135m"]
    assert len(rows) == 1
    for row in rows:
        assert row["source"] == "llm" and row["label"]  # model: what the server lists
        assert row["score_kind"] in ("fidelity_f1_heldout", "unscored")
        assert 1 <= row["candidates"] <= 2  # candidate labels that parsed; the best is kept
        if row["score_kind"] == "fidelity_f1_heldout":
            assert 0.0 <= row["score"] <= 1.0 and row["n_heldout"] >= 2
    again = run_cli(*args, env=env)
    assert again.returncode == 0
    assert "0 prompt + 0 completion tokens new" in again.stderr


def test_diff_hypotheses_and_verification_end_to_end(server, tmp_path):
    env = {"SAETOOLS_LLM_CACHE_DIR": str(tmp_path / "llm-cache")}
    args = (
        "diff",
        EXAMPLES / "a.jsonl",
        EXAMPLES / "b.jsonl",
        "--hypotheses",
        "2",
        "--verify",
        "2",
        "--llm-base-url",
        server,
        "-q",
    )
    run = run_cli(*args, env=env)
    assert run.returncode == 0, run.stderr
    assert "hypotheses (LLM)" in run.stdout and usage_line(run.stderr)[2] > 0
    assert ("H1:" in run.stdout) or ("no usable hypothesis" in run.stdout)
    again = run_cli(*args, env=env)
    assert "0 prompt + 0 completion tokens new" in again.stderr
    assert again.stdout == run.stdout


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
def test_search_rerank_scores_the_top_documents(server, tmp_path):
    client = LLMClient(server, cache_dir=tmp_path / "cache")
    plain = saetools.search(EXAMPLES / "corpus.jsonl", "raises an error", top=8, progress=False)
    frame = saetools.search(
        EXAMPLES / "corpus.jsonl", "raises an error", top=8, rerank=5, llm=client, progress=False
    )
    assert list(frame["rank"]) == list(range(1, 9))
    head = frame.head(5)
    assert set(head["id"]) == set(plain.head(5)["id"])  # the same five, reordered
    scored = head["llm_score"].dropna()
    assert (np.diff(scored.to_numpy()) <= 0).all()  # sorted by the LLM's rating
    assert frame.iloc[5:]["llm_score"].isna().all()
    assert client.usage.requests == 5
    assert isinstance(frame, pd.DataFrame)


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
def test_cluster_names_come_from_the_llm(server, tmp_path):
    client = LLMClient(server, cache_dir=tmp_path / "cache")
    report = saetools.cluster(
        EXAMPLES / "corpus.jsonl",
        2,
        query=["files", "network"],
        id_field="id",
        llm=client,
        progress=False,
    )
    clusters = report.clusters
    assert list(clusters.columns[:2]) == ["cluster", "name"]
    # a cluster is named from its enriched latents; one without any is left unnamed
    described = clusters[(clusters["cluster"] >= 0) & clusters["latents"].map(bool)]
    assert client.usage.requests == len(described) >= 1
    for name in described["name"]:
        assert name is None or 0 < len(name.split()) <= 10
    assert clusters[~clusters.index.isin(described.index)]["name"].isna().all()
