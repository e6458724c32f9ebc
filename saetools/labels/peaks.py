"""Labels that name what a latent fires on: its peak tokens, and the choice between label kinds.

A *peak-token label* lists the distinct tokens (case-folded for counting, shown in their most
common spelling) at which the latent peaked in its top documents, most frequent first, e.g.
``SMTP, POP, IMAP``. Punctuation and whitespace tokens are shown quoted (``"**"``, ``"\\n"``).

A *covering peak label* (:func:`covering_peak_labels`) is built from the peak tokens of many
strong firings rather than of the top documents alone: of the most frequent peak tokens, up to
three are taken greedily, each the one that most raises the label's detection F1 on the
labelling store's own windows (docs/llm.md), so a latent that peaks on ``TP`` in ``SMTP``
and ``HTTP`` is named by what covers most of its firings without matching everywhere.

:func:`choose_labels` keeps, per latent, the candidate label (peak tokens, keywords, ...) with the
higher detection score (F1, or the balanced accuracy, which does not reward a term found
everywhere) on one held-out store, then scores the winner on another held-out store, so the
score shown beside a label is not the one it was chosen by.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..options import DEFAULT_RHO
from .keywords import (
    contains_any,
    detection_balanced_accuracy,
    detection_f1,
    detection_scores,
    detection_windows,
    label_terms,
    peak_term,
)

PEAK_TERMS = 3
COVER_CANDIDATES = 12
"""Peak tokens (the most frequent) a covering label chooses its terms from."""
COVER_WINDOWS = 200
"""Positive and negative windows per latent a covering label is fitted on."""
CRITERIA = ("f1", "balanced_accuracy")
"""Detection scores a label can be fitted and chosen by (columns of
:func:`~saetools.labels.keywords.detection_scores`)."""


def window_score(criterion: str, hits_pos: int, n_pos: int, hits_neg: int, n_neg: int) -> float:
    """The detection ``criterion`` (one of :data:`CRITERIA`) of a label matching ``hits_pos`` of
    ``n_pos`` positive and ``hits_neg`` of ``n_neg`` negative windows."""
    if criterion == "f1":
        return detection_f1(hits_pos, n_pos, hits_neg)
    if criterion == "balanced_accuracy":
        return detection_balanced_accuracy(hits_pos, n_pos, hits_neg, n_neg)
    raise ValueError(f"unknown label criterion {criterion!r} (one of {', '.join(CRITERIA)})")


def peak_tokens(store, latents=None, top: int = 20) -> dict[int, Counter]:
    """For each latent (default: every latent with examples), how often each token is its
    peak among its first ``top`` examples in ``store``; tokens are stripped of surrounding
    whitespace (a whitespace token is kept as its characters)."""
    examples = store.examples[store.examples["rank"] < top]
    if latents is not None:
        examples = examples[examples["latent"].isin({int(j) for j in latents})]
    texts = store.texts(examples["row"].to_numpy())
    counts: dict[int, Counter] = {}
    for k, (latent, start, end) in enumerate(
        examples[["latent", "start", "end"]].itertuples(index=False)
    ):
        token = texts[k][int(start) : int(end)]
        token = token.strip() or token
        if token:
            counts.setdefault(int(latent), Counter())[token] += 1
    return counts


def token_term(token: str) -> str:
    """How a peak token is written in a label: its word, or its visible characters quoted."""
    term = peak_term(token, 0, len(token))
    if term.startswith('"'):
        return term
    # keep the spelling of the text (SMTP, not smtp) when the token is one word
    stripped = token.strip()
    return stripped if stripped.lower() == term else term


def peak_label(tokens: Counter, terms: int = PEAK_TERMS) -> str:
    """The label of one latent: up to ``terms`` distinct peak tokens, most frequent first
    (spellings that differ only in case count together)."""
    spellings: dict[str, Counter] = {}
    totals: Counter = Counter()
    for token, n in tokens.items():
        term = token_term(token)
        key = term.lower()
        spellings.setdefault(key, Counter())[term] += n
        totals[key] += n
    chosen = [spellings[key].most_common(1)[0][0] for key, _ in totals.most_common(terms)]
    return ", ".join(chosen)


def fires_on(stores, latents) -> dict[int, str]:
    """For each latent, :func:`peak_label` of its top examples in ``stores`` (the user's own
    documents); empty for document-level stores, which have no peak token."""
    wanted = {int(j) for j in latents}
    counts: dict[int, Counter] = {}
    if wanted and not stores[0].document_level:
        for store in stores:
            for j, tokens in peak_tokens(store, wanted).items():
                counts.setdefault(j, Counter()).update(tokens)
    return {j: peak_label(c) for j, c in counts.items()}


def label_scores(store) -> dict[int, float]:
    """The held-out score of each latent's label for a store's SAE (where it has one)."""
    from . import label_scores_of_store

    return label_scores_of_store(store) if store.sae_path is not None else {}


def peak_token_labels(store, top: int = 20) -> list[dict]:
    """One ``labels.jsonl`` row per latent with examples in ``store``: its peak-token label
    (source ``peak-tokens``) and its most frequent peak tokens."""
    rows = []
    for latent, tokens in sorted(peak_tokens(store, top=top).items()):
        rows.append(
            {
                "latent": latent,
                "label": peak_label(tokens),
                "source": "peak-tokens",
                "top_tokens": [t for t, _ in tokens.most_common(5)],
            }
        )
    return rows


def covering_peak_labels(
    store,
    terms: int = PEAK_TERMS,
    candidates: int = COVER_CANDIDATES,
    windows: int = COVER_WINDOWS,
    rho: float = DEFAULT_RHO,
    seed: int = 0,
    criterion: str = "f1",
) -> list[dict]:
    """One ``labels.jsonl`` row per latent of a token-level ``store``: its covering peak label
    (source ``peak-cover``), its most frequent peak tokens and the label's score on the windows
    it was fitted on (``fit_f1``, or ``fit_balanced_accuracy`` with that ``criterion``).

    For each latent, up to ``windows`` strong firings (at least ``rho`` x its maximum) and as
    many random windows of documents where it is absent are drawn as in
    :func:`~saetools.labels.keywords.detection_windows`; the ``candidates`` most frequent peak
    tokens of the firings that a label can carry (no comma, not whitespace only, not an English
    stopword) are the candidate terms, and terms are added, best first, while one
    raises the detection ``criterion`` on these windows (at most ``terms``). A store of document
    vectors has no peak tokens: no rows.
    """
    window_score(criterion, 0, 1, 0, 1)  # an unknown criterion fails before any work
    from .keywords import is_document_store, stopwords

    if is_document_store(store):
        return []
    stop = stopwords()
    texts = store.docs["text"].to_numpy()
    latents = np.unique(store.matrix.indices).tolist()
    rows = []
    for latent, pos, neg, peaks in detection_windows(store, latents, rho, windows, windows, seed):
        tokens: Counter = Counter()
        for r, start, end in peaks:
            token = texts[r][start:end]
            token = token.strip() or token
            if token:
                tokens[token] += 1
        if not tokens:
            continue
        spellings: dict[str, Counter] = {}
        for token, n in tokens.items():
            term = token_term(token)
            spellings.setdefault(term.lower(), Counter())[term] += n
        ranked = sorted(spellings, key=lambda key: -sum(spellings[key].values()))
        shown = [spellings[key].most_common(1)[0][0] for key in ranked]
        # only terms a label can carry (one term each once the label is split on commas) and
        # that say something: a stopword ("for", "in") covers firings by matching everywhere
        shown = [
            term
            for term in shown
            if "," not in term and label_terms(term) and label_terms(term)[0] not in stop
        ][:candidates]
        if not shown:
            continue
        matched = [label_terms(term) for term in shown]
        hit_pos = np.array([[contains_any(w, m) for w in pos] for m in matched], dtype=bool)
        hit_neg = np.array([[contains_any(w, m) for w in neg] for m in matched], dtype=bool)
        chosen: list[int] = []
        cover_pos = np.zeros(len(pos), dtype=bool)
        cover_neg = np.zeros(len(neg), dtype=bool)
        best = 0.0
        while len(chosen) < terms:
            gains = [
                (
                    window_score(
                        criterion,
                        int((cover_pos | hit_pos[c]).sum()),
                        len(pos),
                        int((cover_neg | hit_neg[c]).sum()),
                        len(neg),
                    ),
                    -c,
                )
                for c in range(len(shown))
                if c not in chosen
            ]
            if not gains:
                break
            value, minus_c = max(gains)
            if value <= best:
                break
            best, c = value, -minus_c
            chosen.append(c)
            cover_pos |= hit_pos[c]
            cover_neg |= hit_neg[c]
        if not chosen:  # no term detects anything: the most frequent peak token names it
            chosen = [0]
        rows.append(
            {
                "latent": latent,
                "label": ", ".join(shown[c] for c in chosen),
                "source": "peak-cover",
                "top_tokens": [t for t, _ in tokens.most_common(5)],
                f"fit_{criterion}": round(best, 4),
            }
        )
    return rows


def choose_labels(
    candidates: dict[str, list[dict]],
    select_store,
    score_store,
    seed: int = 0,
    criterion: str = "f1",
) -> tuple[list[dict], pd.DataFrame]:
    """Per latent, the candidate row (of the label kinds in ``candidates``) with the highest
    detection ``criterion`` (F1 or balanced accuracy) on ``select_store`` (ties: the kind listed
    first), scored on ``score_store``.

    Returns the chosen rows, each with ``score`` (F1 on ``score_store``), ``score_kind``,
    ``score_balanced_accuracy`` (on ``score_store``) and ``selection_<criterion>`` of every
    kind, and a frame of the selection scores (``latent`` and one column per kind)."""
    window_score(criterion, 0, 1, 0, 1)  # an unknown criterion fails before any work
    kinds = list(candidates)
    by_kind = {kind: {int(r["latent"]): r for r in rows} for kind, rows in candidates.items()}
    selection = pd.DataFrame({"latent": sorted(set().union(*by_kind.values()))})
    for kind in kinds:
        labels = {j: r["label"] for j, r in by_kind[kind].items() if r.get("label")}
        scores = detection_scores(select_store, labels, seed=seed)
        value = dict(zip(scores["latent"], scores[criterion], strict=True)) if len(scores) else {}
        # rounded as recorded, so that the recorded scores are the ones the choice was made on
        selection[kind] = [round(float(value.get(int(j), 0.0)), 4) for j in selection["latent"]]
    score_of = {kind: selection[kind].to_numpy() for kind in kinds}
    chosen = []
    for i, latent in enumerate(selection["latent"].tolist()):
        present = [k for k in kinds if latent in by_kind[k]]
        best = max(present, key=lambda k: (score_of[k][i], -kinds.index(k)))
        chosen.append(
            {
                **by_kind[best][latent],
                f"selection_{criterion}": {k: float(score_of[k][i]) for k in present},
            }
        )
    final = detection_scores(score_store, {r["latent"]: r["label"] for r in chosen}, seed=seed + 1)
    f1 = dict(zip(final["latent"], final["f1"], strict=True)) if len(final) else {}
    accuracy = (
        dict(zip(final["latent"], final["balanced_accuracy"], strict=True)) if len(final) else {}
    )
    for row in chosen:
        if row["latent"] in f1:
            row["score"] = round(float(f1[row["latent"]]), 4)
            row["score_kind"] = "detection_f1_heldout"
            row["score_balanced_accuracy"] = round(float(accuracy[row["latent"]]), 4)
    return chosen, selection
