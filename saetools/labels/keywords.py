"""Offline keyword labels (c-TF-IDF over each latent's top-activating windows) and their
detection score.

For latent j, the *window* of a top example is the text around the token where j peaked. Terms
are the peak token itself (weight 3), bigrams that contain it (weight 2) and the other words of
the window (weight 1). A term's score for j is its weighted count tf(t, j) times
log(1 + A / tf(t)), where tf(t) is its weighted count over all latents' windows and A the mean
weighted count per latent: terms common to every latent's windows sink. The label is the three
best terms.

Detection score: on held-out documents, a window "predicts" j when it contains one of the
label's terms; precision, recall and F1 against windows where j is active (its peak) and windows
from documents where it is not. With as many negative windows as positive ones, a label found in
every window scores F1 2/3; the balanced accuracy (the mean of the share of positive windows
matched and the share of negative windows not matched) gives it 0.5, as it gives a label found
nowhere, and is reported beside F1.

Stores of a sentence-embedding reader have one vector per document (its "peak" spans the whole
text): there every document's words and bigrams count once (weight 1) and detection looks at
whole documents.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..options import DEFAULT_RHO

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
WINDOW = 60  # characters on each side of the peak token
TERMS_PER_LABEL = 3
DOC_SUPPORT = 0.2  # document stores: share of a latent's top documents a term must be in


def stopwords() -> frozenset[str]:
    """English stopwords (scikit-learn's list): words that name no property."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def peak_term(text: str, start: int, end: int) -> str:
    """The peak token as a term: its word, lower-cased, or its visible characters quoted."""
    token = text[start:end]
    words = WORD.findall(token.lower())
    if words:
        return words[0]
    visible = token.strip()
    return f'"{visible}"' if visible else '"\\n"' if "\n" in token else '" "'


def window_terms(text: str, start: int, end: int, stop: frozenset[str]) -> Counter:
    """Weighted terms of the window around ``[start, end)``."""
    terms: Counter = Counter()
    peak = peak_term(text, start, end)
    terms[peak] += 3
    left = WORD.findall(text[max(0, start - WINDOW) : start].lower())
    right = WORD.findall(text[end : end + WINDOW].lower())
    if left and not peak.startswith('"'):
        terms[f"{left[-1]} {peak}"] += 2
    if right and not peak.startswith('"'):
        terms[f"{peak} {right[0]}"] += 2
    for word in left + right:
        if word not in stop and len(word) > 1 and not word.isdigit():
            terms[word] += 1
    return terms


def document_terms(text: str, stop: frozenset[str]) -> Counter:
    """Content words and bigrams of a whole document, each counted once."""
    words = [w for w in WORD.findall(text.lower()) if len(w) > 1 and not w.isdigit()]
    content = {w for w in words if w not in stop}
    pairs = {
        f"{a} {b}"
        for a, b in zip(words, words[1:], strict=False)
        if a not in stop and b not in stop
    }
    return Counter(content | pairs)


def is_document_store(store) -> bool:
    """True when the store holds one vector per document (a sentence-embedding reader)."""
    return (store.reader_spec or {}).get("kind") == "embedding"


def keyword_labels(store, top: int = 20, source: str = "keywords") -> list[dict]:
    """One label row per latent that fired in ``store`` (fields of ``labels.jsonl``)."""
    stop = stopwords()
    whole = is_document_store(store)
    texts = store.docs["text"].to_numpy()
    ids = store.docs["id"].astype(str).to_numpy()
    examples = store.examples[store.examples["rank"] < top]
    per_latent: dict[int, Counter] = {}
    peaks: dict[int, Counter] = {}
    example_ids: dict[int, list[str]] = {}
    n_examples: dict[int, int] = {}
    for latent, group in examples.groupby("latent", sort=True):
        terms, tokens = Counter(), Counter()
        for row, start, end in group[["row", "start", "end"]].itertuples(index=False):
            if whole:
                terms.update(document_terms(texts[row], stop))
                continue
            terms.update(window_terms(texts[row], int(start), int(end), stop))
            tokens[texts[row][int(start) : int(end)]] += 1
        per_latent[int(latent)] = terms
        peaks[int(latent)] = tokens
        example_ids[int(latent)] = [str(ids[r]) for r in group["row"].head(10)]
        n_examples[int(latent)] = len(group)
    background: Counter = Counter()
    for terms in per_latent.values():
        background.update(terms)
    mean_count = np.mean([sum(t.values()) for t in per_latent.values()]) if per_latent else 1.0
    density = np.bincount(store.matrix.indices, minlength=store.d_sae) / max(len(store), 1)
    rows = []
    for latent, terms in per_latent.items():
        if whole:
            # a document label should name what its top documents share: terms found in at
            # least DOC_SUPPORT of them (names of single documents do not recur elsewhere)
            floor = max(2, math.ceil(DOC_SUPPORT * n_examples[latent]))
            shared = {t: tf for t, tf in terms.items() if tf >= floor}
            terms = Counter(shared) if shared else terms
        scored = sorted(
            ((tf * math.log(1 + mean_count / background[t]), t) for t, tf in terms.items()),
            reverse=True,
        )
        chosen: list[str] = []
        for _, term in scored:
            words = set(term.split())
            if any(words & set(c.split()) for c in chosen):
                continue
            chosen.append(term)
            if len(chosen) == TERMS_PER_LABEL:
                break
        rows.append(
            {
                "latent": latent,
                "label": ", ".join(chosen),
                "source": source,
                "density": float(density[latent]),
                "top_tokens": [t for t, _ in peaks[latent].most_common(5)],
                "example_ids": example_ids[latent],
            }
        )
    return rows


def write_labels(rows: list[dict], folder: str | Path, extra: dict | None = None) -> Path:
    """Write ``labels.jsonl`` into ``folder`` atomically (``extra`` is merged into every row)."""
    path = Path(folder) / "labels.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps({**row, **(extra or {})}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def label_terms(label: str) -> list[str]:
    """The terms of a keyword label (comma-separated), quotes removed."""
    return [t.strip().strip('"').lower() for t in label.split(",") if t.strip().strip('"')]


def contains_any(window: str, terms: list[str]) -> bool:
    """True when the window (case-folded) contains one of the terms."""
    low = window.lower()
    return any(t in low for t in terms)


def detection_windows(
    store,
    latents,
    rho: float = DEFAULT_RHO,
    negatives: int = 40,
    positives: int = 40,
    seed: int = 0,
) -> Iterator[tuple[int, list[str], list[str], list[tuple[int, int, int]]]]:
    """The windows a label of each latent is tested on (see module doc), latent by latent.

    Yields ``(latent, positive windows, negative windows, peaks)`` for every latent of
    ``latents`` that is active in ``store`` and absent from at least one document: positive
    windows lie around the peak of up to ``positives`` documents where the latent exceeds rho x
    its maximum, negative windows are random spans of up to ``negatives`` documents where it is
    absent, and ``peaks`` holds each positive window's ``(row, start, end)`` peak span. For a
    document store (:func:`is_document_store`) both are whole documents. Draws from one seeded
    generator in the order of ``latents``.
    """
    whole = is_document_store(store)
    rng = np.random.default_rng(seed)
    csc = store.matrix.tocsc()
    texts = store.docs["text"].to_numpy()
    n_docs = len(store)
    for latent in latents:
        lo, hi = csc.indptr[latent], csc.indptr[latent + 1]
        if hi == lo:
            continue
        values, rows = csc.data[lo:hi], csc.indices[lo:hi]
        strong = rows[values >= rho * values.max()]
        if len(strong) == 0:
            continue
        pos_rows = rng.choice(strong, min(positives, len(strong)), replace=False)
        absent = np.setdiff1d(np.arange(n_docs), rows, assume_unique=False)
        if len(absent) == 0:
            continue
        neg_rows = rng.choice(absent, min(negatives, len(absent)), replace=False)
        pos, peaks = [], []
        for r in pos_rows:
            start, end = store.span(int(r), int(latent))
            pos.append(texts[r] if whole else texts[r][max(0, start - WINDOW) : end + WINDOW])
            peaks.append((int(r), start, end))
        neg = []
        for r in neg_rows:
            text = texts[r]
            centre = int(rng.integers(0, max(len(text), 1)))
            neg.append(text if whole else text[max(0, centre - WINDOW) : centre + WINDOW])
        yield int(latent), pos, neg, peaks


def detection_f1(hits_pos: int, n_pos: int, hits_neg: int) -> float:
    """F1 of a label that matches ``hits_pos`` of ``n_pos`` positive windows and ``hits_neg``
    negative ones."""
    precision = hits_pos / (hits_pos + hits_neg) if hits_pos + hits_neg else 0.0
    recall = hits_pos / n_pos if n_pos else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def detection_balanced_accuracy(hits_pos: int, n_pos: int, hits_neg: int, n_neg: int) -> float:
    """Balanced accuracy of a label that matches ``hits_pos`` of ``n_pos`` positive windows and
    ``hits_neg`` of ``n_neg`` negative ones: 0.5 for a label that matches every window or none,
    1 for one that matches exactly the positives."""
    hit_rate = hits_pos / n_pos if n_pos else 0.0
    miss_rate = 1 - hits_neg / n_neg if n_neg else 0.0
    return (hit_rate + miss_rate) / 2


def detection_scores(
    store,
    labels: dict[int, str],
    rho: float = DEFAULT_RHO,
    negatives: int = 40,
    positives: int = 40,
    seed: int = 0,
) -> pd.DataFrame:
    """Detection precision, recall, F1 and balanced accuracy of each label on held-out ``store``
    (see module doc and :func:`detection_windows`)."""
    terms_of = {latent: label_terms(label) for latent, label in labels.items()}
    wanted = [latent for latent, terms in terms_of.items() if terms]
    out = []
    windows = detection_windows(store, wanted, rho, negatives, positives, seed)
    for latent, pos, neg, _ in windows:
        terms = terms_of[latent]
        tp = sum(contains_any(w, terms) for w in pos)
        fp = sum(contains_any(w, terms) for w in neg)
        fn = len(pos) - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out.append(
            {
                "latent": latent,
                "precision": precision,
                "recall": recall,
                "f1": detection_f1(tp, len(pos), fp),
                "balanced_accuracy": detection_balanced_accuracy(tp, len(pos), fp, len(neg)),
                "positives": len(pos),
                "negatives": len(neg),
            }
        )
    return pd.DataFrame(out)


def attach_scores(rows: list[dict], scores: pd.DataFrame, labelling_docs: int) -> dict:
    """Write each label row's held-out detection F1 into it (``score``, ``score_kind``) and
    return the summary recipes put into ``provenance.json`` (quartiles, mean, count)."""
    by_latent = scores.set_index("latent")
    for row in rows:
        if row["latent"] in by_latent.index:
            row["score"] = round(float(by_latent.loc[row["latent"], "f1"]), 4)
            row["score_kind"] = "detection_f1_heldout"
    f1 = scores["f1"]
    return {
        "source": "keywords",
        "count": len(rows),
        "labelling_docs": labelling_docs,
        "detection_f1": {
            q: round(float(f1.quantile(x)), 3)
            for q, x in (("p25", 0.25), ("median", 0.5), ("p75", 0.75))
        },
        "detection_f1_mean": round(float(f1.mean()), 3),
        "scored": int(len(f1)),
    }
