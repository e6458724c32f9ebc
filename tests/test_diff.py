"""diff: statistics, ranking, planted properties with a real reader, reports, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats as sps

import saetools
from saetools.analyses.diff import diff_matrices
from saetools.analyses.stats import benjamini_hochberg, two_proportion_test, welch_test
from saetools.errors import SaetoolsError

from .helpers import fresh_home, random_sae, write_jsonl


def test_benjamini_hochberg_known_values():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # sorted: .005 .01 .03 .04 .5 -> *5/rank: .025 .025 .05 .05 .5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, 0.5])


def test_welch_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.exponential(1.0, (80, 5)), rng.exponential(1.3, (60, 5))
    t, p, _ = welch_test(a.sum(0), (a**2).sum(0), 80, b.sum(0), (b**2).sum(0), 60)
    ref = sps.ttest_ind(b, a, equal_var=False)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-6)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-6)


def test_two_proportion_test_is_fishers_exact_test_for_every_count():
    count_a, count_b = np.array([1, 300, 0, 20]), np.array([6, 340, 18, 50])
    p = two_proportion_test(count_a, 400, count_b, 400)
    for got, a, b in zip(p, count_a, count_b, strict=True):
        assert got == pytest.approx(sps.fisher_exact([[a, 400 - a], [b, 400 - b]]).pvalue)
    # where a pooled z-test is 3x off although every expected cell is above 5
    exact = two_proportion_test(np.array([0]), 600, np.array([18]), 600)[0]
    pooled = 18 / 1200
    z = (18 / 600) / np.sqrt(pooled * (1 - pooled) * (2 / 600))
    assert exact < 1.08e-5 < 2 * sps.norm.sf(z)  # 0.05 / 4,609: BH's bar at rank 1


def synthetic(n, d, seed, plant_col=None, plant_rate=0.0, plant_density=None):
    """Sparse exponential noise per column (column densities shared by every seed); optionally
    a column raised to 2-4 in some documents."""
    density = np.random.default_rng(12345).uniform(0.01, 0.5, d)
    rng = np.random.default_rng(seed)
    if plant_density is not None:
        density[plant_col] = plant_density
    values = rng.exponential(1.0, (n, d)) * (rng.random((n, d)) < density)
    planted = np.zeros(n, bool)
    if plant_col is not None and plant_rate > 0:
        planted[rng.choice(n, int(plant_rate * n), replace=False)] = True
        values[planted, plant_col] = rng.uniform(2, 4, planted.sum())
    return sp.csr_matrix(values.astype(np.float32)), planted


@pytest.mark.parametrize("test", ["frequency", "welch"])
def test_planted_sparse_latent_ranks_first(test):
    """An SAE-like latent (rare elsewhere) that fires strongly in 6% of B."""
    a, _ = synthetic(1000, 300, 1, plant_col=42, plant_density=0.02)
    b, _ = synthetic(1000, 300, 2, plant_col=42, plant_rate=0.06, plant_density=0.02)
    frame = diff_matrices(a, b, test=test)
    assert frame.iloc[0]["latent"] == 42 and frame.iloc[0]["direction"] == "B>A"
    assert frame.iloc[0]["q_value"] < 1e-3
    assert list(frame.columns[:4]) == ["latent", "freq_a", "freq_b", "delta"]
    np.testing.assert_allclose(frame["delta"], frame["freq_b"] - frame["freq_a"])


def test_welch_finds_a_shift_in_a_latent_that_is_everywhere():
    """A latent active in ~40% of all documents, raised in 6% of B: the relative threshold
    (rho x the column's peak) misses it, the Welch test on activations does not."""
    a, _ = synthetic(1000, 300, 1, plant_col=42, plant_density=0.4)
    b, _ = synthetic(1000, 300, 2, plant_col=42, plant_rate=0.06, plant_density=0.4)
    assert diff_matrices(a, b, test="welch").iloc[0]["latent"] == 42


@pytest.mark.parametrize("test", ["frequency", "welch"])
def test_null_splits_are_calibrated(test):
    """Under no difference, BH at 0.05 reports any latent in at most ~5% of splits."""
    runs = [
        diff_matrices(*[synthetic(400, 200, 1000 * s + side)[0] for side in (0, 1)], test=test)[
            "significant"
        ].any()
        for s in range(40)
    ]
    assert sum(runs) <= 4


# --- real reader and SAE ---------------------------------------------------------------


@pytest.fixture(scope="module")
def example_store(tmp_path_factory, reader_bf16, example_sae, example_texts):
    return saetools.encode(
        example_texts,
        tmp_path_factory.mktemp("ex") / "s",
        reader=reader_bf16,
        sae=example_sae,
        progress=False,
    )


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
def test_null_split_of_real_documents_reports_nothing_in_most_seeds(example_store):
    matrix = example_store.matrix
    clean = 0
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(matrix.shape[0])
        half = len(order) // 2
        frame = diff_matrices(matrix[order[:half]], matrix[order[half:]])
        clean += int(not frame["significant"].any())
    assert clean >= 2


@pytest.mark.slow
@pytest.mark.parametrize("plant", ["phrase", "apology"])
def test_planted_property_found_with_fitted_sae(plant, tmp_path, reader_bf16, example_texts):
    from saetools.evaluation import best_top_auroc, planted_split

    case = planted_split(example_texts, plant, 0.10, seed=1)
    sae_dir = saetools.train_sae(
        case.a + case.b,
        tmp_path / "sae",
        reader=reader_bf16,
        latents=2304,
        k=32,
        epochs=8,
        batch_size=2048,
        progress=False,
    ).folder
    frame = saetools.diff(case.a, case.b, reader=reader_bf16, sae=sae_dir, progress=False)
    up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
    store_b = saetools.encode(case.b, reader=reader_bf16, sae=sae_dir, progress=False)
    auroc, rank = best_top_auroc(up, store_b.matrix, case.planted, top=5)
    assert auroc >= 0.9, (plant, auroc)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "saetools.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # 41 s; the grouped CLI outputs are also checked by test_grouping.py
def test_cli_diff_writes_table_csv_jsonl_and_html(tmp_path, example_sae):
    from .conftest import ROOT

    a, b = ROOT / "examples" / "a.jsonl", ROOT / "examples" / "b.jsonl"
    proc = run_cli(
        "diff",
        a,
        b,
        "--sae",
        example_sae,
        "--out",
        tmp_path / "d.csv",
        "--html",
        tmp_path / "r.html",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "d.csv")
    for column in ("latent", "label", "freq_a", "freq_b", "delta", "p_value", "q_value"):
        assert column in table.columns
    # one row per property; every one of the SAE's 1024 latents is in exactly one
    assert table["size"].sum() == 1024 and table["significant"].sum() > 0
    members = [j for cell in table["members"] for j in json.loads(cell)]
    assert sorted(members) == list(range(1024))
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and "<mark>" in page and "More frequent in B" in page
    again = run_cli("diff", a, b, "--sae", example_sae, "--out", tmp_path / "d.jsonl")
    assert again.returncode == 0, again.stderr
    assert "more frequent in B" in again.stdout and "[[" in again.stdout
    rows = [json.loads(line) for line in open(tmp_path / "d.jsonl")]
    assert rows[0]["latent"] == table["latent"][0]


def test_stores_from_different_saes_are_refused(tmp_path, reader_bf16, example_sae, example_texts):
    other = random_sae(tmp_path / "other", d_sae=256, k=16)  # the same reader, another SAE
    a = saetools.encode(
        example_texts[:20], tmp_path / "a", reader=reader_bf16, sae=example_sae, progress=False
    )
    b = saetools.encode(
        example_texts[20:40], tmp_path / "b", reader=reader_bf16, sae=other, progress=False
    )
    with pytest.raises(SaetoolsError, match="encoded differently: SAE"):
        saetools.diff(a.folder, b.folder)
    proc = run_cli("diff", a.folder, b.folder, "--quiet")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "encoded differently" in proc.stderr


def test_diff_bad_input_names_file_and_line(tmp_path, example_sae):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": \n')
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": "fine"}])
    proc = run_cli("diff", bad, good, "--sae", example_sae, "--quiet")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "bad.jsonl:2: malformed JSON" in proc.stderr


def test_vectorised_fisher_matches_scipy_for_small_and_large_counts():
    from saetools.analyses.stats import fisher_exact_two_sided

    rng = np.random.default_rng(3)
    for n_a, n_b in ((120, 90), (600, 600), (1000, 30), (5, 7)):
        count_a = np.r_[
            rng.integers(0, n_a + 1, 60), rng.integers(0, 6, 20), n_a - rng.integers(0, 6, 20), 0
        ]
        count_b = np.r_[
            rng.integers(0, n_b + 1, 60), rng.integers(0, 6, 20), n_b - rng.integers(0, 6, 20), 0
        ]
        count_a, count_b = np.minimum(count_a, n_a), np.minimum(count_b, n_b)
        got = fisher_exact_two_sided(count_a, n_a, count_b, n_b)
        want = [
            sps.fisher_exact([[a, n_a - a], [b, n_b - b]]).pvalue
            for a, b in zip(count_a, count_b, strict=True)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-9)
    # a million documents: the cost does not grow with the counts
    big = fisher_exact_two_sided(np.array([499_000]), 500_000, np.array([500_000]), 500_000)[0]
    assert big == pytest.approx(sps.fisher_exact([[499_000, 1000], [500_000, 0]]).pvalue)


@pytest.mark.slow  # > 45 s on a 2-core CPU without native bf16
def test_cli_diff_fit_trains_an_sae_on_both_sides_and_caches_it(tmp_path):
    import os
    import time

    from .conftest import ROOT

    env = {**os.environ, "SAETOOLS_HOME": str(fresh_home(tmp_path / "home"))}
    args = [
        sys.executable,
        "-m",
        "saetools.cli",
        "diff",
        ROOT / "examples" / "a.jsonl",
        ROOT / "examples" / "b.jsonl",
        "--fit",
        "--quiet",
        "--out",
        tmp_path / "fit.csv",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert first.returncode == 0, first.stderr
    fits = list((tmp_path / "home" / "fits").iterdir())
    assert len(fits) == 1 and (fits[0] / "cfg.json").exists()
    sae = saetools.load_sae(fits[0])
    # sized to the data: ~1 latent per 20 tokens, multiple of 256, within [1024, 8192]
    assert 1024 <= sae.cfg.d_sae <= 8192 and sae.cfg.d_sae % 256 == 0 and sae.cfg.k == 32
    table = pd.read_csv(tmp_path / "fit.csv")
    assert len(table) == sae.cfg.d_sae and table["significant"].any()
    start = time.time()
    again = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0 and time.time() - start < 60
    assert pd.read_csv(tmp_path / "fit.csv")["latent"].tolist() == table["latent"].tolist()


def test_diff_missing_file_is_a_one_line_error(tmp_path, example_sae):
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": "fine"}])
    proc = run_cli("diff", tmp_path / "missing.jsonl", good, "--sae", example_sae, "--quiet")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "missing.jsonl: no such file" in proc.stderr


def shared_sentence_examples() -> list[dict]:
    """Two documents that end in the same sentence, peaking on its last word, and a third."""
    shared = "Methods from the following RFCs are all observed: RFC 7231 Hypertext"
    peak = shared.index("Hypertext")
    return [
        {"text": "HTTP methods. " + shared, "start": peak + 14, "end": peak + 23},
        {"text": "HTTP status codes. " + shared, "start": peak + 19, "end": peak + 28},
        {"text": "A socket connected to a host and port", "start": 2, "end": 8},
    ]


def test_an_example_that_reads_like_one_already_shown_is_skipped():
    from saetools.text import distinct_examples

    items = shared_sentence_examples()
    first, second = items[0], items[1]
    assert first["text"][first["start"] : first["end"]] == "Hypertext"
    assert second["text"][second["start"] : second["end"]] == "Hypertext"
    assert distinct_examples(items, 50) == [items[0], items[2]]
    assert distinct_examples(items, 50, n=1) == [items[0]]
    # with more context on each side the two documents' openings differ
    assert distinct_examples(items, 80) == items


def test_the_text_report_shows_a_shared_sentence_once():
    from saetools.report.diff_text import format_diff

    examples = shared_sentence_examples()
    frame = pd.DataFrame(
        [
            {
                "latent": 7,
                "label": "http",
                "freq_a": 0.0,
                "freq_b": 0.5,
                "delta": 0.5,
                "q_value": 1e-3,
                "direction": "B>A",
                "significant": True,
                "examples_b": examples,
                "examples_a": [],
            }
        ]
    )
    text = format_diff(frame)
    assert text.count("[[Hypertext]]") == 1
    assert "B: A [[socket]] connected to a host and port" in text
