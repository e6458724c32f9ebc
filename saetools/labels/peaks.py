"""Labels that name what a latent fires on: its peak tokens, and the choice between label kinds.

A *peak-token label* lists the distinct tokens (case-folded for counting, shown in their most
common spelling) at which the latent peaked in its top documents, most frequent first, e.g.
``SMTP, POP, IMAP``. Punctuation and whitespace tokens are shown quoted (``"**"``, ``"\\n"``).

:func:`choose_labels` keeps, per latent, the candidate label (peak tokens, keywords, ...) with the
higher detection F1 on one held-out store, then scores the winner on another held-out store, so
the score shown beside a label is not the one it was chosen by.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from .keywords import detection_scores, peak_term

PEAK_TERMS = 3


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


def choose_labels(
    candidates: dict[str, list[dict]], select_store, score_store, seed: int = 0
) -> tuple[list[dict], pd.DataFrame]:
    """Per latent, the candidate row (of the label kinds in ``candidates``) with the highest
    detection F1 on ``select_store`` (ties: the kind listed first), scored on ``score_store``.

    Returns the chosen rows, each with ``score`` (F1 on ``score_store``), ``score_kind`` and
    ``selection_f1`` of every kind, and a frame of the selection F1s (``latent`` and one column
    per kind)."""
    kinds = list(candidates)
    by_kind = {kind: {int(r["latent"]): r for r in rows} for kind, rows in candidates.items()}
    selection = pd.DataFrame({"latent": sorted(set().union(*by_kind.values()))})
    for kind in kinds:
        labels = {j: r["label"] for j, r in by_kind[kind].items() if r.get("label")}
        scores = detection_scores(select_store, labels, seed=seed)
        f1 = dict(zip(scores["latent"], scores["f1"], strict=True)) if len(scores) else {}
        selection[kind] = [f1.get(int(j), 0.0) for j in selection["latent"]]
    f1_of = {kind: selection[kind].to_numpy() for kind in kinds}
    chosen = []
    for i, latent in enumerate(selection["latent"].tolist()):
        present = [k for k in kinds if latent in by_kind[k]]
        best = max(present, key=lambda k: (f1_of[k][i], -kinds.index(k)))
        chosen.append(
            {
                **by_kind[best][latent],
                "selection_f1": {k: round(float(f1_of[k][i]), 4) for k in present},
            }
        )
    final = detection_scores(score_store, {r["latent"]: r["label"] for r in chosen}, seed=seed + 1)
    f1 = dict(zip(final["latent"], final["f1"], strict=True)) if len(final) else {}
    for row in chosen:
        if row["latent"] in f1:
            row["score"] = round(float(f1[row["latent"]]), 4)
            row["score_kind"] = "detection_f1_heldout"
    return chosen, selection
