"""LLM baselines on the planted cases: an LLM-only proposer against saetools + LLM hypotheses.

- ``LLM only``: the LLM reads ``sample`` documents of A and of B (each cut to 300 characters)
  and lists 5 properties more common in B (the VisDiff / D5 proposer, without a verifier);
- ``saetools → LLM``: ``saetools.diff`` on the full halves, then ``saetools.hypotheses`` turns
  the top latents (labels, frequencies, example snippets) into 5 hypotheses.

A hypothesis names the planted property when, among the property descriptions of
:data:`planted_diff.PROPERTIES` plus a few distractors (the corpus's own topics, length), the
description nearest to it (MiniLM cosine) is the planted one and the cosine is ≥ 0.3. The rank
of the first such hypothesis is the case's rank (0: none). Tokens are counted from the server's
``usage`` with the cache off, so they are what each method costs.
"""

from __future__ import annotations

import random
import re
import time
from typing import NamedTuple

from benchmarks.quality.planted_diff import PROPERTIES, Plant, plant_texts, split_halves

DISTRACTORS = [
    "about business and the economy",
    "about sports",
    "about politics and government",
    "about films, music and entertainment",
    "longer texts",
    "shorter texts",
    "mentions people and places",
]
METHODS = ("LLM only", "saetools → LLM")
THRESHOLD = 0.3
SYSTEM = "You compare two groups of texts and describe how they differ. Be concise and concrete."


def proposer_messages(a_texts: list[str], b_texts: list[str], n: int = 5) -> list[dict]:
    """The LLM-only proposer's prompt: samples of both groups, then the request."""

    def block(name: str, texts: list[str]) -> str:
        return "\n".join(f"{name}{i + 1}: {' '.join(t.split())[:300]}" for i, t in enumerate(texts))

    user = (
        f"Group A:\n{block('A', a_texts)}\n\nGroup B:\n{block('B', b_texts)}\n\n"
        f"List {n} properties that are more common in group B than in group A, most important "
        "first, one per line."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_lines(text: str, n: int = 5) -> list[str]:
    """Up to ``n`` hypotheses: the reply's non-empty lines, numbering and bullets removed."""
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)]|H:)\s*", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if len(line.split()) >= 2]
    if not lines:
        raise ValueError("no hypothesis lines")
    return lines[:n]


class Judge:
    """Maps a hypothesis to the nearest property description (or distractor) with MiniLM."""

    def __init__(self, embedder, properties: dict[str, Plant]) -> None:
        self.names = list(properties) + [f"distractor: {d}" for d in DISTRACTORS]
        texts = [p.description for p in properties.values()] + DISTRACTORS
        self.embedder = embedder
        self.vectors = embedder.embed(texts)

    def rank(self, hypotheses: list[str], prop: str) -> int:
        """1-based rank of the first hypothesis judged to name ``prop``; 0 if none."""
        if not hypotheses:
            return 0
        sims = self.embedder.embed(hypotheses) @ self.vectors.T
        for rank, row in enumerate(sims, start=1):
            if self.names[int(row.argmax())] == prop and row.max() >= THRESHOLD:
                return rank
        return 0


class LLMResult(NamedTuple):
    """Ranks per (property, rate) and method, tokens per method, example hypotheses."""

    ranks: dict[tuple[str, float], dict[str, list[int]]]
    tokens: dict[str, tuple[int, int, int]]  # method -> (requests, prompt, completion)
    examples: dict[str, list[str]]  # "method / property / rate" -> hypotheses of split 1
    seconds: float
    model: str
    sample: int


def run_llm(
    texts: list[str],
    pool: list[str],
    base_url: str,
    embedder,
    *,
    seeds: int = 2,
    rates: tuple[float, ...] = (0.10, 0.30),
    sample: int = 20,
    properties: dict[str, Plant] | None = None,
    progress: bool = True,
) -> LLMResult:
    """Both LLM methods on the planted cases of one corpus."""
    import saetools
    from saetools.llm import LLMClient

    properties = PROPERTIES if properties is None else properties
    start = time.perf_counter()
    judge = Judge(embedder, properties)
    clients = {m: LLMClient(base_url, use_cache=False, timeout=300, retries=1) for m in METHODS}
    ranks: dict[tuple[str, float], dict[str, list[int]]] = {}
    examples: dict[str, list[str]] = {}
    for seed in range(seeds):
        a_rows, b_rows = split_halves(len(texts), seed)
        a_texts = [texts[r] for r in a_rows]
        for prop, plant in properties.items():
            chosen, planted = plant_texts(texts, pool, b_rows, plant, seed, max(rates))
            for rate in rates:
                n_plant = max(1, round(rate * len(b_rows)))
                where = {i: k for k, i in enumerate(chosen[:n_plant])}
                b_texts = [
                    planted[where[i]] if i in where else texts[r] for i, r in enumerate(b_rows)
                ]
                rng = random.Random(seed * 1000 + int(rate * 100))
                reply = clients["LLM only"].complete(
                    proposer_messages(rng.sample(a_texts, sample), rng.sample(b_texts, sample)),
                    parse_lines,
                    max_tokens=200,
                )
                only = reply.value or []
                frame = saetools.diff(a_texts, b_texts, progress=False)
                found = saetools.hypotheses(
                    frame, client=clients["saetools → LLM"], n=5, progress=False
                )
                via = found["hypothesis"].tolist() if len(found) else []
                entry = ranks.setdefault((prop, rate), {m: [] for m in METHODS})
                entry["LLM only"].append(judge.rank(only, prop))
                entry["saetools → LLM"].append(judge.rank(via, prop))
                if seed == 0:
                    examples[f"LLM only / {prop} / {rate:.0%}"] = only
                    examples[f"saetools → LLM / {prop} / {rate:.0%}"] = via
        if progress:
            print(f"[LLM] split {seed + 1}/{seeds} done ({time.perf_counter() - start:.0f} s)")
    tokens = {
        m: (c.usage.requests, c.usage.prompt_tokens, c.usage.completion_tokens)
        for m, c in clients.items()
    }
    model = clients["LLM only"].model
    return LLMResult(ranks, tokens, examples, time.perf_counter() - start, model, sample)


def markdown(result: LLMResult) -> list[str]:
    """The LLM section of docs/benchmarks.md."""
    lines = [
        f"## LLM baselines ({result.model}, {result.seconds / 60:.1f} min)",
        "",
        f"Short documents; LLM only reads {result.sample} + {result.sample} documents per case. "
        "Hit rank of the first hypothesis judged to name the planted property (0 = none of 5):",
        "",
        "| property | p | " + " | ".join(METHODS) + " |",
        "|---|---|" + "---|" * len(METHODS),
    ]
    totals = {m: [0, 0, 0] for m in METHODS}
    for (prop, rate), entry in result.ranks.items():
        lines.append(
            f"| {prop} | {rate:.0%} | "
            + " | ".join(" ".join(map(str, entry[m])) for m in METHODS)
            + " |"
        )
        for m in METHODS:
            totals[m][0] += sum(r == 1 for r in entry[m])
            totals[m][1] += sum(1 <= r <= 5 for r in entry[m])
            totals[m][2] += len(entry[m])
    lines += [
        "",
        "| method | acc@1 | acc@5 | requests | prompt tokens | completion tokens "
        "| tokens per case |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in METHODS:
        top1, top5, total = totals[m]
        requests, prompt, completion = result.tokens[m]
        lines.append(
            f"| {m} | {top1}/{total} ({top1 / max(total, 1):.0%}) | "
            f"{top5}/{total} ({top5 / max(total, 1):.0%}) | {requests} | {prompt:,} | "
            f"{completion:,} | {(prompt + completion) / max(total, 1):,.0f} |"
        )
    lines += [
        "",
        "saetools diff itself uses no LLM tokens (offline keyword labels). Example hypotheses "
        "(split 1, p = 30%):",
        "",
    ]
    for key, hyps in result.examples.items():
        if key.endswith("/ 30%") and ("apology" in key or "capitals" in key):
            shown = "; ".join(h[:90] for h in hyps[:3]) or "(none parsed)"
            lines.append(f"- {key}: {shown}")
    return lines + [""]
