"""The evaluation suite's building blocks (benchmarks/quality): baselines, planting, metrics."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmarks.quality import svg
from benchmarks.quality.clustering import cell
from benchmarks.quality.fidelity import direction_sae
from benchmarks.quality.llm_proposer import parse_lines
from benchmarks.quality.planted_diff import (
    PROPERTIES,
    ceiling_hit,
    first_hit,
    gram_matrix,
    gram_set,
    gram_vocabulary,
    plant_texts,
    split_halves,
)
from benchmarks.quality.search_apologies import ndcg_at
from benchmarks.quality.thresholds import least_p, ranked_up, tarone_q
from saetools.analyses.diff import diff_matrices
from saetools.store.activity import ColumnData


def test_ngram_baseline_counts_presence_of_case_sensitive_uni_and_bigrams():
    sets = [gram_set("I hope it is correct."), gram_set("i hope so"), gram_set("I hope")]
    assert {"I", "hope", "I hope", "correct", "."} <= sets[0] and "i" not in sets[0]
    vocabulary = gram_vocabulary(sets)  # grams in >= 2 documents
    assert set(vocabulary) == {"hope", "I", "I hope"}
    matrix = gram_matrix(sets, vocabulary).toarray()
    assert matrix.shape == (3, 3)
    assert matrix[:, vocabulary["I hope"]].tolist() == [1, 0, 1]
    assert matrix[:, vocabulary["hope"]].tolist() == [1, 1, 1]


def test_planting_is_nested_across_rates_and_deterministic():
    texts = [f"document {i}." for i in range(100)]
    a_rows, b_rows = split_halves(len(texts), seed=3)
    assert sorted(np.r_[a_rows, b_rows].tolist()) == list(range(100))
    chosen, planted = plant_texts(texts, [], b_rows, PROPERTIES["phrase (fixed)"], 3, 0.3)
    again, _ = plant_texts(texts, [], b_rows, PROPERTIES["phrase (fixed)"], 3, 0.3)
    assert chosen == again and len(chosen) == 15 and len(set(chosen)) == 15
    assert all(t.endswith("I hope it is correct.") for t in planted)
    assert planted[0].startswith(texts[b_rows[chosen[0]]])
    topic = PROPERTIES["topic: technology articles"]
    _, swapped = plant_texts(texts, ["tech a", "tech b"], b_rows, topic, 3, 0.1)
    assert swapped == ["tech a", "tech b", "tech a", "tech b", "tech a"]


def test_first_hit_is_the_rank_of_the_first_item_that_separates_the_planted_documents():
    rng = np.random.default_rng(0)
    n = 200
    planted = np.zeros(n, bool)
    planted[:40] = True
    noise = (rng.random((n, 3)) < 0.1).astype(np.float32)
    broad = np.maximum(noise[:, 0], rng.random(n) < 0.6)  # B>A too, but not the plant
    b = np.column_stack([broad, noise[:, 1], planted, noise[:, 2]])
    a = np.column_stack([noise[:, 0], noise[:, 1], np.zeros(n), noise[:, 2]])

    frame = diff_matrices(sp.csr_matrix(a), sp.csr_matrix(b), threshold=0.0)
    up = frame[(frame["direction"] == "B>A") & frame["significant"]]["latent"].tolist()
    assert up[:2] == [0, 2]  # the broad item ranks first, the planted one second
    assert first_hit(frame, sp.csr_matrix(b), planted) == 2
    assert first_hit(frame, sp.csr_matrix(b), planted, top=1) == 0


def test_the_ceiling_is_whether_a_perfect_latent_is_significant_under_the_same_diff():
    """A latent firing on exactly the planted documents is significant when enough are planted,
    not when too few are among many latents (Benjamini-Hochberg), and is again among few."""
    rng = np.random.default_rng(1)
    n, width = 300, 2000
    a = sp.random(n, width, density=0.02, format="csr", dtype=np.float32, random_state=rng)
    b = sp.random(n, width, density=0.02, format="csr", dtype=np.float32, random_state=rng)
    many, few = np.zeros(n, bool), np.zeros(n, bool)
    many[:30] = True  # 10% of B
    few[:9] = True  # 3% of B: p = 3.7e-3, above the bar 0.05 / 2,001
    assert ceiling_hit(a, b, many) == 1
    assert ceiling_hit(a, b, few) == 0
    assert ceiling_hit(a[:, :10], b[:, :10], few) == 1  # bar 0.05 / 11


def test_ndcg_with_binary_relevance():
    relevant = np.array([1, 0, 1, 0], float)
    assert ndcg_at(relevant, np.array([4, 3, 2, 1.0])) == pytest.approx(
        (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    )
    assert ndcg_at(relevant, np.array([4, 1, 3, 2.0])) == pytest.approx(1.0)


def test_proposer_reply_parsing_drops_numbering_and_short_lines():
    text = "1. Group B apologises more\n2) uses capital letters\n- ok\n\n* mentions Spain often"
    assert parse_lines(text) == [
        "Group B apologises more",
        "uses capital letters",
        "mentions Spain often",
    ]
    with pytest.raises(ValueError):
        parse_lines("ok\n\n")


def test_direction_features_are_signed_z_scores_kept_by_topk():
    directions = np.eye(4, dtype=np.float32)[:2]  # two orthonormal directions in 4-d
    mean = np.array([1, 1, 0, 0], np.float32)
    std = np.array([2.0, 0.5], np.float32)
    sae = direction_sae(directions, mean, std, {"kind": "test"}, k=1)
    assert sae.cfg.d_sae == 4
    x = torch.tensor([[1 + 4.0, 1 - 1.0, 0, 0]])  # +2 sd on direction 0, -2 sd on direction 1
    dense = sae.encode_dense(x)[0]
    assert dense.argmax().item() in (0, 3) and dense.max().item() == pytest.approx(2.0)
    sae.cfg.k = 4
    dense = sae.encode_dense(x)[0]
    assert dense.tolist() == pytest.approx([2.0, 0.0, 0.0, 2.0])


def test_svg_charts_are_well_formed():
    line = svg.line_chart({"a": [(0.1, 0.5), (0.3, 1.0)]}, "t", "x", "y")
    bars = svg.bar_chart({"SAE": 0.25, "ICA": 0.3}, "t", "F1")
    xy = svg.xy_chart({"a": [(0.9, 0.1), (0.5, 0.4)], "b": [(0.8, 0.05)]}, "t", "x", "y", (0.5, 1))
    for text in (line, bars, xy):
        root = ET.fromstring(text)
        assert root.tag.endswith("svg")
    assert line.count("<circle") == 2 and bars.count("<rect") == 2 and xy.count("<circle") == 3
    # numeric x axis from 0.5 (left edge, 50 px) to 1 (370 px): 0.9 at 306 px
    assert 'cx="50.0"' in xy and 'cx="306.0"' in xy


def test_ari_cells_show_a_range_only_when_seeds_differ_at_two_decimals():
    assert cell([0.691, 0.689, 0.6904]) == "0.69"
    assert cell([-0.004, 0.003]) == "0.00"  # no "-0.00", no range of equal values
    assert cell([0.84, 0.86, 0.88]) == "0.86 (0.84 to 0.88)"


def test_real_pair_known_differences_are_measured_from_the_texts():
    from benchmarks.quality.real_pairs import known_differences

    plain = [f"The answer is {i}." for i in range(40)]
    styled = [f"**Answer:** {i}\n\n1. first\n2. second" for i in range(30)] + plain[:10]
    known = {k["marker"]: k for k in known_differences(plain, styled)}
    assert set(known) == {"bold", "numbered list"}
    assert known["bold"]["direction"] == "B>A"
    assert known["bold"]["freq_a"] == 0 and known["bold"]["freq_b"] == pytest.approx(0.75)
    # the same texts on both sides: nothing differs
    assert known_differences(styled, styled) == []


def test_a_latent_fires_on_a_marker_when_most_of_its_peaks_lie_inside_matches():
    from benchmarks.quality.real_pairs import MARKERS, fires_on_marker

    text = "Sure! **Bold claim** and more text here."
    inside = {"text": text, "start": text.index("Bold"), "end": text.index("Bold") + 4}
    outside = {"text": text, "start": text.index("more"), "end": text.index("more") + 4}
    assert fires_on_marker([inside] * 3 + [outside] * 2, MARKERS["bold"])
    assert not fires_on_marker([inside] * 2 + [outside] * 3, MARKERS["bold"])
    assert fires_on_marker([{**inside, "start": 0, "end": 4}] * 3, MARKERS["opener"])


def test_the_line_break_opening_a_marked_line_counts_only_when_asked():
    from benchmarks.quality.real_pairs import MARKERS, fires_on_marker

    text = "Rinse the towels.\n\n4. Hold the pan.\n\nThen rest."
    opening = {"text": text, "start": text.index("\n\n4."), "end": text.index("4.")}
    plain = {"text": text, "start": text.index("\n\nThen"), "end": text.index("Then")}
    word = {"text": text, "start": text.index("pan"), "end": text.index("pan") + 3}
    before_word = {"text": text, "start": text.index("towels"), "end": text.index(".\n\n4")}
    numbered = MARKERS["numbered list"]
    assert not fires_on_marker([opening] * 5, numbered)
    assert fires_on_marker([opening] * 3 + [plain] * 2, numbered, line_break=True)
    # ordinary line breaks, words inside the line and tokens before it do not count
    assert not fires_on_marker([opening] * 2 + [plain] * 3, numbered, line_break=True)
    assert not fires_on_marker([word] * 5, numbered, line_break=True)
    assert not fires_on_marker([before_word] * 5, numbered, line_break=True)


def test_a_new_page_carries_the_hand_kept_candidate_section_over(tmp_path):
    from benchmarks.quality.__main__ import CANDIDATES_HEADING, kept_section

    page = tmp_path / "benchmarks.md"
    assert kept_section(page, CANDIDATES_HEADING) == []  # no page yet
    page.write_text(
        f"# B\n\n## Summary\n\n| x |\n\n{CANDIDATES_HEADING}\n\n| pack | acc@5 |\n| a | 41% |\n\n"
        "## Planted differences\n\nmore\n"
    )
    assert kept_section(page, CANDIDATES_HEADING) == [
        CANDIDATES_HEADING,
        "",
        "| pack | acc@5 |",
        "| a | 41% |",
        "",
    ]
    page.write_text("# B\n\n## Summary\n")
    assert kept_section(page, CANDIDATES_HEADING) == []


def test_llama_flops_per_token_are_two_per_block_weight_plus_causal_attention():
    from benchmarks.speed.gpu_reader import SMALL_LLAMA, llama_flops_per_token, random_llama

    model = random_llama(SMALL_LLAMA, 2, torch.device("cpu"), torch.float32)
    weights = sum(p.numel() for p in model.model.layers.parameters() if p.dim() == 2)
    width, window = SMALL_LLAMA["hidden_size"], 512
    # scores and values: 2 FLOPs per multiply-add, over on average half the window, per block
    attention = 2 * 2 * width * (window // 2)
    assert llama_flops_per_token(SMALL_LLAMA, 2, window) == 2 * weights + 2 * attention
    assert len(model.model.layers) == 2 and model.dtype == torch.float32


def test_least_reachable_p_is_the_p_of_all_documents_on_one_side():
    from saetools.analyses.stats import fisher_exact_two_sided

    floor = least_p(np.array([0, 1, 18, 700]), 600, 600)
    assert floor[0] == pytest.approx(1.0)
    assert floor[2] == pytest.approx(
        fisher_exact_two_sided(np.array([0]), 600, np.array([18]), 600)[0]
    )
    assert floor[2] < 1e-5 < floor[1]  # 18 documents can pass BH among thousands, 1 cannot
    assert floor[3] < 1e-100  # 700 > 600: all of B and 100 of A is still extreme


def test_tarone_filter_drops_untestable_hypotheses_and_keeps_plain_bh_otherwise():
    from saetools.analyses.stats import benjamini_hochberg

    p = np.r_[2e-5, np.full(999, 0.5)]
    floor = np.r_[1e-8, np.full(999, 0.2)]  # 999 latents too rare to ever be significant
    q = tarone_q(p, floor)
    assert q[0] == pytest.approx(2e-5) and np.all(q[1:] == 1)
    assert benjamini_hochberg(p)[0] == pytest.approx(2e-2)  # plain BH over all 1,000
    testable = np.full(1000, 1e-12)
    assert np.allclose(tarone_q(p, testable), benjamini_hochberg(p))


def test_threshold_variants_count_and_rank_like_the_diff():
    rng = np.random.default_rng(0)
    a = sp.csr_matrix(rng.random((200, 6)) * (rng.random((200, 6)) < 0.3))
    b_dense = rng.random((200, 6)) * (rng.random((200, 6)) < 0.3)
    b_dense[:40, 4] = 5.0  # latent 4 fires strongly on a fifth of B
    b = sp.csr_matrix(b_dense)
    tau = np.full(6, 0.5)
    assert ColumnData(a).counts_above(tau).tolist() == [
        int((a[:, j].toarray() > 0.5).sum()) for j in range(6)
    ]
    up = ranked_up(a, b, (0.5,), tarone=False)
    assert up[0] == 4
    frame = diff_matrices(a, b)
    expected = frame[(frame.direction == "B>A") & frame.significant]["latent"].tolist()
    assert up.tolist() == expected
