"""Peak-token labels and the held-out choice between label kinds."""

from __future__ import annotations

from collections import Counter

import pytest

from saetools.labels.peaks import (
    choose_labels,
    peak_label,
    peak_token_labels,
    peak_tokens,
    token_term,
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
