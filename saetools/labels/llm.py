"""LLM labels for latents, scored for fidelity (the labelling prompt follows "Interpretable
Embeddings with Sparse Autoencoders: A Data Analysis Toolkit"; detection scoring follows
arXiv:2408.00657 and arXiv:2309.08600).

For each latent, from a store:

* **examples**: its top-activating documents (``store.examples``; the token where it peaked is
  marked ``<<like this>>``) and random documents where it is not active (below rho · s_j).
  Even-ranked activating examples and half of the non-activating ones go into the labelling
  prompt; the rest are held out.
* **label**: the LLM reads 10 activating and 10 non-activating snippets and answers with a short
  label and a one-sentence description. ``candidates > 1`` asks for several (varied seeds) and
  keeps the best-scoring one.
* **fidelity**: for each held-out snippet (unmarked), the LLM answers from the label alone
  whether it shows the property (one short yes/no request per snippet: small local models
  cannot fill in a numbered list); against the truth: precision, recall, F1, and the Pearson
  correlation between the prediction (0/1) and the true normalised activation (0 if inactive).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import SaetoolsError
from ..llm.client import LLMEstimate
from ..options import DEFAULT_RHO
from ..text import snippet

LABEL_SYSTEM = (
    "You explain features of a text model. A feature fires on some texts; the token where it "
    "fires most is marked <<like this>>."
)
LABEL_MAX_TOKENS = 64
SCORE_MAX_TOKENS = 12
SCORE_SYSTEM = "You answer every question with a single word: yes or no."


def marked_snippet(text: str, start: int, end: int, width: int = 100) -> str:
    """Text around ``[start, end)`` with that span marked ``<<...>>``, whitespace flattened."""
    return snippet(text, start, end, width, ("<<", ">>"), ellipsis=False)


def plain_snippet(text: str, start: int, end: int, width: int = 100) -> str:
    """The same window as :func:`marked_snippet`, without the marks."""
    return snippet(text, start, end, width, ("", ""), ellipsis=False)


class LatentExamples:
    """A latent's examples for labelling (``prompt_*``) and for scoring (``held_*``)."""

    def __init__(self, store, latent: int, rng: np.random.Generator, n: int = 10, rho=DEFAULT_RHO):
        ex = store.examples
        rows = ex[ex["latent"] == latent].sort_values("rank")
        texts = store.docs["text"].to_numpy()
        column = store.matrix[:, [latent]].toarray().ravel()
        scale = float(column.max()) if column.size else 0.0
        self.latent = latent
        active = [
            (int(r.row), float(r.value), int(r.start), int(r.end))
            for r in rows.itertuples()
            if r.value > rho * scale
        ]
        prompt_act, held_act = active[0::2][:n], active[1::2][:n]
        inactive = np.nonzero(column <= rho * scale)[0]
        picks = rng.choice(inactive, size=min(len(inactive), 2 * n), replace=False)
        prompt_non, held_non = picks[:n], picks[n:]
        self.prompt_active = [marked_snippet(texts[r], s, e) for r, _, s, e in prompt_act]
        self.prompt_inactive = [" ".join(texts[r][:200].split()) for r in prompt_non]
        held_texts = [plain_snippet(texts[r], s, e) for r, _, s, e in held_act]
        held_texts += [" ".join(texts[r][:200].split()) for r in held_non]
        self.held = held_texts
        self.held_truth = np.array([1] * len(held_act) + [0] * len(held_non))
        values = [v / scale if scale > 0 else 0.0 for _, v, _, _ in held_act]
        self.held_values = np.array(values + [0.0] * len(held_non))
        # shuffle the held-out order so the LLM cannot learn "the first ones match"
        order = rng.permutation(len(self.held))
        self.held = [self.held[i] for i in order]
        self.held_truth = self.held_truth[order]
        self.held_values = self.held_values[order]

    @property
    def usable(self) -> bool:
        """At least two activating examples in the prompt and one held out."""
        return len(self.prompt_active) >= 2 and int(self.held_truth.sum()) >= 1


def label_messages(examples: LatentExamples) -> list[dict]:
    """The labelling prompt: activating and non-activating snippets, answer format."""
    active = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(examples.prompt_active))
    inactive = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(examples.prompt_inactive))
    user = (
        f"Texts where the feature fires (the strongest token is marked <<like this>>):\n{active}"
        f"\n\nTexts where it does not fire:\n{inactive}\n\n"
        "What does the feature detect? Answer in exactly two lines:\n"
        "LABEL: <a short label, at most 8 words>\n"
        "DESCRIPTION: <one sentence>"
    )
    return [{"role": "system", "content": LABEL_SYSTEM}, {"role": "user", "content": user}]


REFUSAL = re.compile(r"^(i'?m sorry|i am sorry|i cannot|i can't|sorry,|as an ai)", re.IGNORECASE)


def parse_label(text: str) -> tuple[str, str]:
    """``(label, description)`` from a reply: a ``LABEL:`` line (and ``DESCRIPTION:``), or, from
    models that ignore the format, a short first line. ValueError if there is no usable label
    (nothing, a refusal, or a label over 12 words)."""
    label = re.search(r"label\s*[:\-]\s*(.+)", text, re.IGNORECASE)
    description = re.search(r"description\s*[:\-]\s*(.+)", text, re.IGNORECASE)
    if label:
        value = label.group(1)
    else:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if not lines:
            raise ValueError("empty reply")
        value = lines[0]
    value = value.strip().strip("\"'*.").strip()
    if not value or REFUSAL.match(value):
        raise ValueError("no label in the reply")
    if len(value.split()) > 12:
        raise ValueError(f"label of {len(value.split())} words (at most 12)")
    return value, description.group(1).strip() if description else ""


def score_messages(label: str, description: str, text: str) -> list[dict]:
    """The fidelity prompt for one held-out text: from the label alone, does it match?"""
    prop = label + (f" ({description})" if description else "")
    user = f'Text: {text}\n\nDoes this text match "{prop}"? Answer yes or no.'
    return [{"role": "system", "content": SCORE_SYSTEM}, {"role": "user", "content": user}]


def parse_yes_no(text: str) -> int:
    """1 for yes, 0 for no: the first "yes" or "no" in the reply's first sentence; ValueError if
    it has neither."""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    match = re.search(r"\b(yes|no)\b", first, re.IGNORECASE)
    if not match:
        raise ValueError("neither yes nor no")
    return 1 if match.group(1).lower() == "yes" else 0


def fidelity(predicted: np.ndarray, truth: np.ndarray, values: np.ndarray) -> dict:
    """Precision, recall, F1 of the predictions, and their Pearson r with the activations."""
    predicted, truth = np.asarray(predicted, int), np.asarray(truth, int)
    tp = int(((predicted == 1) & (truth == 1)).sum())
    precision = tp / predicted.sum() if predicted.sum() else 0.0
    recall = tp / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if predicted.std() > 0 and np.std(values) > 0:
        pearson = float(np.corrcoef(predicted, values)[0, 1])
    else:
        pearson = 0.0
    return {
        "f1": round(float(f1), 4),
        "precision": round(float(precision), 4),
        "recall": round(float(recall), 4),
        "pearson": round(pearson, 4),
    }


def label_latents(
    store,
    latents: Sequence[int],
    client,
    *,
    candidates: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[dict], list[dict]]:
    """LLM labels with fidelity scores for ``latents`` of a store.

    Returns ``(rows, failures)``: rows ready for ``labels.jsonl`` (latent, label, description,
    source "llm", model, score = held-out F1, precision, recall, pearson, candidates tried) and
    one ``{latent, error}`` per latent that could not be labelled.
    """
    rng = np.random.default_rng(seed)
    examples = [LatentExamples(store, int(j), rng) for j in latents]
    usable = [e for e in examples if e.usable]
    failures = [
        {"latent": e.latent, "error": "too few activating examples in this data"}
        for e in examples
        if not e.usable
    ]
    jobs = [
        {
            "messages": label_messages(e),
            "seed": seed + c,
            "temperature": 0.0 if c == 0 else 0.7,
            "max_tokens": LABEL_MAX_TOKENS,
        }
        for e in usable
        for c in range(candidates)
    ]
    labelled = client.map(jobs, parse_label, progress=progress, desc="labelling")
    score_jobs, owners = [], []
    for k, result in enumerate(labelled):
        if result.value is None:
            continue
        ex = usable[k // candidates]
        for text in ex.held:
            score_jobs.append(
                {
                    "messages": score_messages(*result.value, text),
                    "max_tokens": SCORE_MAX_TOKENS,
                    "parse": parse_yes_no,
                }
            )
        owners.append(k)
    scored = iter(client.map(score_jobs, progress=progress, desc="scoring"))
    best: dict[int, dict] = {}
    for k in owners:
        ex = usable[k // candidates]
        label, description = labelled[k].value
        answers = [next(scored) for _ in ex.held]
        answered = np.array([a.value is not None for a in answers])
        note = None
        if answered.sum() >= max(2, len(answers) // 2):
            predicted = np.array([a.value for a in answers if a.value is not None])
            stats = fidelity(predicted, ex.held_truth[answered], ex.held_values[answered])
            ok = True
            if not answered.all():
                note = f"{int((~answered).sum())} of {len(answers)} held-out answers unusable"
        else:
            stats = {"f1": None, "precision": None, "recall": None, "pearson": None}
            ok = False
            note = next((a.error for a in answers if a.error), "no usable answers")
        row = {
            "latent": ex.latent,
            "label": label,
            "description": description,
            "source": "llm",
            "model": client.model,
            "score": stats["f1"] if ok else 0.0,
            "score_kind": "fidelity_f1_heldout" if ok else "unscored",
            **{k2: stats[k2] for k2 in ("precision", "recall", "pearson")},
            "n_heldout": int(answered.sum()),
            "scoring_error": note,
        }
        current = best.get(ex.latent)
        if current is None or (row["score"] or 0) > (current["score"] or 0):
            best[ex.latent] = {**row, "candidates": 0}
        best[ex.latent]["candidates"] += 1
    for k, result in enumerate(labelled):
        latent = usable[k // candidates].latent
        if latent not in best and k % candidates == candidates - 1:
            failures.append({"latent": latent, "error": result.error or "no usable label"})
    rows = [best[j] for j in sorted(best)]
    return rows, failures


def select_latents(store, spec: str | Sequence[int], rho: float = DEFAULT_RHO) -> list[int]:
    """Latent ids from ``top:N`` (the N latents active in the most documents), ``all``, a
    comma-separated list, or a sequence of ids."""
    from ..store.activity import binarize

    if not isinstance(spec, str):
        ids = [int(j) for j in spec]
    elif spec == "all":
        ids = list(range(store.d_sae))
    elif spec.startswith("top:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise SaetoolsError(f"--latents {spec!r}: expected top:N with N a number") from None
        counts = np.diff(binarize(store.matrix, rho).tocsc().indptr)
        order = np.lexsort((np.arange(len(counts)), -counts))
        ids = [int(j) for j in order[:n] if counts[j] > 0]
    else:
        try:
            ids = [int(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            raise SaetoolsError(
                f"--latents {spec!r}: expected top:N, all, or comma-separated ids"
            ) from None
    bad = [j for j in ids if not 0 <= j < store.d_sae]
    if bad:
        raise SaetoolsError(f"latent {bad[0]} is out of range (the SAE has {store.d_sae})")
    return ids


def label_jobs_estimate(client, store, latents, candidates: int) -> LLMEstimate:
    """Estimated uncached requests and tokens of labelling (labels + fidelity scoring)."""
    rng = np.random.default_rng(0)
    jobs = []
    for j in latents:
        ex = LatentExamples(store, int(j), rng)
        if ex.usable:
            jobs.extend(
                {
                    "messages": label_messages(ex),
                    "seed": c,
                    "temperature": 0.0 if c == 0 else 0.7,
                    "max_tokens": LABEL_MAX_TOKENS,
                }
                for c in range(candidates)
            )
    requests, prompt, completion = client.estimate(jobs)
    # each label is then scored on up to 20 held-out snippets, one short request each
    return LLMEstimate(21 * requests, prompt + requests * 20 * 90, completion + requests * 20 * 4)


def labelling_store(target, data=None, source=None, *, progress: bool = True):
    """The store to take labelling examples from: ``target`` if it is a store or data file
    (encoded with ``source``'s SAE), or ``data`` encoded with the SAE folder ``target``."""
    from dataclasses import replace
    from pathlib import Path

    from ..options import Source
    from ..sae.hub import parse_reference
    from ..sae.io import detect_format
    from ..store.cache import is_store, store_for

    source = source or Source()
    local_sae = isinstance(target, str | Path) and Path(target).is_dir() and not is_store(target)
    hub_sae = isinstance(target, str) and not Path(target).exists() and parse_reference(target)
    if local_sae or hub_sae:
        try:
            detect_format(target)
        except SaetoolsError:
            if hub_sae:
                raise
            raise SaetoolsError(f"{target}: neither a store nor an SAE folder") from None
        if data is None:
            raise SaetoolsError(f"{target} is an SAE: pass --data FILE to take examples from")
        source, target = replace(source, sae=target), data
    store = store_for(target, source, progress=progress)
    if store.sae_path is None:
        raise SaetoolsError(f"{store.folder}: the store does not record where its SAE is")
    return store
