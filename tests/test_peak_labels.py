"""Peak-token labels and the held-out choice between label kinds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from saetools.labels.keywords import (
    contains_any,
    detection_balanced_accuracy,
    detection_f1,
    detection_windows,
    label_terms,
    stopwords,
)
from saetools.labels.peaks import (
    CRITERIA,
    choose_labels,
    covering_peak_labels,
    peak_label,
    peak_token_labels,
    peak_tokens,
    token_term,
    window_score,
)


def test_peak_label_counts_spellings_together_and_quotes_punctuation():
    tokens = Counter({"SMTP": 5, "smtp": 2, " POP3": 3, ",": 4, "\n": 1})
    assert peak_label(tokens) == 'SMTP, ",", POP3'
    assert peak_label(Counter({"\n": 2}), terms=1) == '"\\n"'


@pytest.fixture(scope="module")
def stores(tmp_path_factory, reader_bf16, example_sae, example_texts):
    """Three stores of the example SAE over disjoint documents: labelling, selection, scoring."""
    from saetools.api import encode

    folder = tmp_path_factory.mktemp("peak-stores")
    parts = (example_texts[:150], example_texts[150:225], example_texts[225:300])
    return [
        encode(texts, folder / name, reader=reader_bf16, sae=example_sae, progress=False)
        for name, texts in zip(("label", "select", "score"), parts, strict=True)
    ]


def test_peak_token_labels_name_the_tokens_where_each_latent_peaked(stores):
    store = stores[0]
    rows = peak_token_labels(store)
    assert rows and all(r["source"] == "peak-tokens" and r["label"] for r in rows)
    examples = store.examples[store.examples["rank"] < 20]
    checked = 0
    for row in rows[:50]:
        mine = examples[examples["latent"] == row["latent"]]
        seen = Counter()
        for r in mine["row"]:
            start, end = store.span(int(r), row["latent"])
            token = store.texts([int(r)])[0][start:end]
            seen[token_term(token.strip() or token).lower()] += 1
        first = row["label"].split(", ")[0].lower()
        assert first and seen, row
        # the label's first term is one of the most frequent peak tokens (case folded)
        top = max(seen.values())
        assert any(first == t for t, n in seen.items() if n == top), (row, seen)
        checked += 1
    assert checked == min(50, len(rows))


def test_choice_keeps_the_label_that_detects_better_and_scores_it_elsewhere(stores):
    label_store, select_store, score_store = stores
    peaks = peak_token_labels(label_store)
    useless = [{**r, "label": "qqqzzzxx", "source": "keywords"} for r in peaks]
    for order in (("keywords", "peak-tokens"), ("peak-tokens", "keywords")):
        pools = {"keywords": useless, "peak-tokens": peaks}
        chosen, selection = choose_labels({k: pools[k] for k in order}, select_store, score_store)
        assert len(chosen) == len(peaks) == len(selection)
        by_latent = {r["latent"]: r for r in chosen}
        better = selection[selection["peak-tokens"] > 0]["latent"]
        assert len(better) > len(peaks) // 2
        for j in better:
            assert by_latent[int(j)]["source"] == "peak-tokens"
        assert all(r["selection_f1"]["keywords"] == 0 for r in chosen)
    scored = [r for r in chosen if "score" in r]
    assert scored and all(r["score_kind"] == "detection_f1_heldout" for r in scored)
    assert all(0 <= r["score"] <= 1 for r in scored)
    # the score comes from the scoring store, not the selection one
    assert any(r["score"] != r["selection_f1"][r["source"]] for r in scored)
    accuracy = np.array([r["score_balanced_accuracy"] for r in scored])
    f1 = np.array([r["score"] for r in scored])
    assert ((accuracy >= 0) & (accuracy <= 1)).all()
    assert accuracy[f1 >= 0.7].mean() > accuracy[f1 < 0.3].mean()


def test_balanced_accuracy_gives_a_label_found_everywhere_chance_where_f1_gives_it_two_thirds():
    everywhere = (40, 40, 40, 40)  # hits on positives, positives, hits on negatives, negatives
    assert detection_f1(40, 40, 40) == pytest.approx(2 / 3)
    assert detection_balanced_accuracy(*everywhere) == 0.5
    assert detection_balanced_accuracy(0, 40, 0, 40) == 0.5
    assert detection_balanced_accuracy(40, 40, 0, 40) == 1.0
    # a specific label found in 30 of 40 positives and 2 of 40 negatives beats the ubiquitous one
    # on balanced accuracy (0.85 against 0.5) though F1 ranks them close (0.83 against 0.67)
    assert detection_balanced_accuracy(30, 40, 2, 40) == pytest.approx(0.85)


def window_value(criterion, terms, pos, neg):
    """The detection ``criterion`` of label terms on positive and negative windows."""
    hits = sum(contains_any(w, terms) for w in pos)
    false = sum(contains_any(w, terms) for w in neg)
    return window_score(criterion, hits, len(pos), false, len(neg))


@pytest.mark.parametrize("criterion", CRITERIA)
def test_covering_labels_detect_their_firings_at_least_as_well_as_their_top_peak_token(
    stores, criterion
):
    store = stores[0]
    rows = covering_peak_labels(store, windows=60, seed=3, criterion=criterion)
    by_latent = {r["latent"]: r for r in rows}
    assert len(rows) > 100 and all(r["source"] == "peak-cover" for r in rows)
    # the windows are drawn latent by latent from one generator: draw them for the same latents
    latents = np.unique(store.matrix.indices).tolist()
    texts = store.docs["text"].to_numpy()
    better = 0
    for latent, pos, neg, peaks in detection_windows(
        store, latents, negatives=60, positives=60, seed=3
    ):
        row = by_latent.pop(latent, None)
        if row is None:  # no peak token a label can carry
            continue
        terms = label_terms(row["label"])
        assert 1 <= len(terms) <= 3, row
        seen = Counter()
        for r, start, end in peaks:
            token = texts[r][start:end]
            seen[token_term(token.strip() or token).lower()] += 1
        # every term is one of the latent's peak tokens
        peak_terms = {t for k in seen for t in label_terms(k)}
        assert set(terms) <= peak_terms, (row, seen)

        fitted = window_value(criterion, terms, pos, neg)
        assert fitted == pytest.approx(row[f"fit_{criterion}"], abs=1e-4)
        assert not set(terms) & stopwords(), row
        eligible = [k for k, _ in seen.most_common() if "," not in k and label_terms(k)]
        eligible = [k for k in eligible if label_terms(k)[0] not in stopwords()]
        top = window_value(criterion, label_terms(eligible[0]), pos, neg)
        assert fitted >= top - 1e-9, (row, seen)
        better += fitted > top + 1e-9
    assert not by_latent  # the same windows: a row for every latent drawn
    assert better > 0  # the greedy cover improves on the most frequent token somewhere


@pytest.mark.parametrize("criterion", CRITERIA)
def test_the_choice_takes_covering_labels_where_they_detect_better(stores, criterion):
    label_store, select_store, score_store = stores
    candidates = {
        "peak-tokens": peak_token_labels(label_store),
        "peak-cover": covering_peak_labels(label_store, criterion=criterion),
    }
    chosen, selection = choose_labels(candidates, select_store, score_store, criterion=criterion)
    sources = Counter(r["source"] for r in chosen)
    assert set(sources) == {"peak-tokens", "peak-cover"}, sources
    for row in chosen:
        value = row[f"selection_{criterion}"]
        if "peak-cover" in value and "peak-tokens" in value:
            best = "peak-cover" if value["peak-cover"] > value["peak-tokens"] else "peak-tokens"
            assert row["source"] == best, row


def test_an_unknown_label_criterion_is_refused(stores):
    with pytest.raises(ValueError, match="unknown label criterion 'auc'"):
        covering_peak_labels(stores[0], criterion="auc")


def test_peak_tokens_of_chosen_latents_only(stores):
    counts = peak_tokens(stores[0], latents=[0, 1, 2, 3])
    assert set(counts) <= {0, 1, 2, 3}


def test_diff_rows_show_where_their_latent_fires_in_the_compared_documents(stores):
    from saetools.analyses.diff import diff_stores
    from saetools.report.diff_text import format_diff

    a, b = stores[1], stores[2]
    frame = diff_stores(a, b, by="latent", example_rows=5, alpha=1.0)
    shown = frame[frame["examples_b"].map(len) > 0]
    assert len(shown) >= 5
    for row in shown.head(10).itertuples(index=False):
        peaks = Counter()
        for store in (a, b):
            peaks.update(peak_tokens(store, [row.latent]).get(int(row.latent), Counter()))
        assert row.fires_on == peak_label(peaks)
        assert row.label_score is None  # the example SAE has no scored labels
    assert (frame.loc[frame["examples_b"].map(len) == 0, "fires_on"] == "").all()
    text = format_diff(frame.assign(significant=True), top=3)
    assert text.count("fires on: ") >= 3
