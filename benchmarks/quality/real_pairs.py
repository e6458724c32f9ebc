r"""Real pairs with a known answer: does a diff of two models' answers name what differs?

Pairs from the AlpacaEval outputs (../shared/corpora/alpaca-eval; see its README): the same
model prompted for concise vs verbose answers, and a model before vs after preference tuning.
Each side is the answers to the first ``n`` instructions, cut at 256 tokens (what the diff reads).

The known answer is measured on the texts themselves, not assumed: surface markers whose
document frequency differs between the sides by at least ``MIN_GAP`` (and a two-proportion test
at p < 0.001) are the pair's known differences — markdown bold, headings, numbered and bulleted
lists, apologies, AI disclaimers, closing offers ("hope this helps", "let me know"), openers
("Certainly!", "Sure"), code fences, summaries. A known difference is *found* when one of the
diff's first five significant properties in its direction fires on the marker: the peak token of
at least three of its five top examples on that side lies inside a match of the marker. A
second count also accepts a peak on the line break that opens a marked line (the `\n\n` before
`4. Hold`): a causal reader cannot see the list marker yet at that token, so a latent that says
"a list item comes next" peaks there; a latent for line breaks in general does not pass, since
most of its top examples open ordinary lines.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path
from typing import NamedTuple

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "alpaca-eval"
PAIRS = (
    ("Mixtral-8x7B-Instruct-v0.1_concise", "Mixtral-8x7B-Instruct-v0.1_verbose", "verbosity"),
    ("claude-2.1_concise", "claude-2.1_verbose", "verbosity"),
    ("alpaca-7b_concise", "alpaca-7b_verbose", "verbosity"),
    ("Meta-Llama-3-8B-Instruct", "Llama-3-Instruct-8B-SimPO", "preference tuning"),
    ("Mistral-7B-Instruct-v0.2", "Snorkel-Mistral-PairRM-DPO", "preference tuning"),
    ("tulu-2-dpo-13b", "tulu-2-dpo-13b-ExPO", "preference tuning"),
)
MARKERS = {
    "bold": r"\*\*[^*\n]{1,80}\*\*",
    "heading": r"(?m)^#{1,6} [^\n]*",
    "numbered list": r"(?m)^[ \t]*\d{1,2}[.)] ",
    "bullet list": r"(?m)^[ \t]*[-*•] ",
    "apology": r"(?i)\b(?:sorry|apologi[sz]e|apologies)\b",
    "AI disclaimer": r"(?i)\b(?:as an ai|ai language model|language model)\b",
    "closing offer": r"(?i)\b(?:hope (?:this|that) helps|let me know|feel free to)\b",
    "opener": r"(?i)^\s*(?:certainly|sure|of course|absolutely|great question)\b[^\n]{0,3}",
    "code fence": r"```",
    "summary": r"(?i)\b(?:in summary|in conclusion|overall,|to summari[sz]e)\b",
}
MIN_GAP = 0.15
TOP = 5
EXAMPLES = 5
NEEDED = 3
MAX_TOKENS = 256
RANKS = ("found", "found_line")
"""Per known difference: rank of the first property peaking inside the marker, and of the
first peaking inside it or on the line break that opens a marked line (None: not in the top)."""


class PairResult(NamedTuple):
    """One pair: the known differences and which were found, the diff's top labels."""

    a: str
    b: str
    kind: str
    n: int
    mean_tokens: tuple[float, float]
    known: list[dict]  # marker, direction, freq_a, freq_b, found (rank or None)
    top_labels: dict[str, list[str]]  # direction -> first three labels


def answers(model: str, n: int) -> dict[int, str]:
    """The answers of ``model`` to instructions ``0..n-1`` (by instruction index)."""
    found: dict[int, str] = {}
    with gzip.open(CORPUS / "outputs.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] == model and row["instruction_idx"] < n and row["text"].strip():
                found[row["instruction_idx"]] = row["text"]
    if not found:
        raise SystemExit(f"no answers of {model} in {CORPUS}")
    return found


def cut(texts: list[str], tokenizer, limit: int = MAX_TOKENS) -> tuple[list[str], list[int]]:
    """Each text cut after its first ``limit`` tokens, and its full length in tokens."""
    out, lengths = [], []
    for text in texts:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        lengths.append(len(offsets))
        out.append(text if len(offsets) <= limit else text[: offsets[limit - 1][1]])
    return out, lengths


def two_proportion_p(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """Two-sided p-value of a pooled two-proportion z-test."""
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(max(pooled * (1 - pooled) * (1 / n_a + 1 / n_b), 1e-12))
    z = abs(x_a / n_a - x_b / n_b) / se
    return math.erfc(z / math.sqrt(2))


def known_differences(texts_a: list[str], texts_b: list[str]) -> list[dict]:
    """The markers whose document frequency differs between the sides (see module doc)."""
    out = []
    for name, pattern in MARKERS.items():
        rx = re.compile(pattern)
        x_a = sum(bool(rx.search(t)) for t in texts_a)
        x_b = sum(bool(rx.search(t)) for t in texts_b)
        f_a, f_b = x_a / len(texts_a), x_b / len(texts_b)
        if (
            abs(f_b - f_a) >= MIN_GAP
            and two_proportion_p(x_a, len(texts_a), x_b, len(texts_b)) < 1e-3
        ):
            direction = "B>A" if f_b > f_a else "A>B"
            out.append({"marker": name, "direction": direction, "freq_a": f_a, "freq_b": f_b})
    return out


def peaks_on(item: dict, match: re.Match, line_break: bool) -> bool:
    """Whether an example's peak token lies inside ``match`` or, with ``line_break``, is the
    line break (whitespace with a newline) that ends where the match begins."""
    start, end = item["start"], item["end"]
    if match.start() <= start and end <= match.end() + 1:
        return True
    token = item["text"][start:end]
    return line_break and end == match.start() and "\n" in token and not token.strip()


def fires_on_marker(examples: list[dict], pattern: str, line_break: bool = False) -> bool:
    """Whether at least ``NEEDED`` of the examples peak on a match of ``pattern`` (see
    :func:`peaks_on`)."""
    rx = re.compile(pattern)
    inside = 0
    for item in examples[:EXAMPLES]:
        if any(peaks_on(item, m, line_break) for m in rx.finditer(item["text"])):
            inside += 1
    return inside >= NEEDED


def run_pair(a: str, b: str, kind: str, n: int, sae=None, reader=None) -> PairResult:
    """Diff one pair and check its known differences."""
    import saetools

    answers_a, answers_b = answers(a, n), answers(b, n)
    shared = sorted(set(answers_a) & set(answers_b))
    tokenizer = reader.tokenizer
    texts_a, len_a = cut([answers_a[i] for i in shared], tokenizer)
    texts_b, len_b = cut([answers_b[i] for i in shared], tokenizer)
    frame = saetools.diff(
        texts_a, texts_b, sae=sae, reader=reader, examples=EXAMPLES, progress=False
    )
    known = known_differences(texts_a, texts_b)
    for item in known:
        side = "examples_b" if item["direction"] == "B>A" else "examples_a"
        rows = frame[(frame["direction"] == item["direction"]) & frame["significant"]].head(TOP)
        for key, line_break in (("found", False), ("found_line", True)):
            item[key] = None
            for rank, row in enumerate(rows.itertuples(index=False), start=1):
                if fires_on_marker(getattr(row, side), MARKERS[item["marker"]], line_break):
                    item[key] = rank
                    break
    top_labels = {
        d: frame[(frame["direction"] == d) & frame["significant"]]["label"].head(3).tolist()
        for d in ("B>A", "A>B")
    }
    mean = (sum(len_a) / len(len_a), sum(len_b) / len(len_b))
    return PairResult(a, b, kind, len(shared), mean, known, top_labels)


def run_real_pairs(n: int = 200, sae=None, progress: bool = True) -> list[PairResult]:
    """Every pair of :data:`PAIRS` (``sae``: an SAE folder, default the shipped pack)."""
    from saetools.readers import load_reader

    reader = load_reader(quiet=True)
    results = []
    for a, b, kind in PAIRS:
        result = run_pair(a, b, kind, n, sae=sae, reader=reader)
        if progress:
            found = sum(k["found"] is not None for k in result.known)
            print(f"{a} vs {b}: {found}/{len(result.known)} known differences found", flush=True)
        results.append(result)
    return results


def markdown(results: list[PairResult]) -> list[str]:
    """The section of docs/benchmarks.md."""
    known = [k for r in results for k in r.known]
    found = sum(k["found"] is not None for k in known)
    found_line = sum(k["found_line"] is not None for k in known)
    lines = [
        "## Real pairs with a known answer",
        "",
        __doc__.strip().split("\n\n", 1)[1],
        "",
        f"Known differences found in the top {TOP}: **{found} of {len(known)}** with the peak "
        f"inside the marker, **{found_line} of {len(known)}** also counting the line break that "
        "opens a marked line.",
        "",
        "| A | B | tokens A / B | known difference (freq A → B) | found at rank | "
        "with the opening line break |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        tokens = f"{r.mean_tokens[0]:.0f} / {r.mean_tokens[1]:.0f}"
        if not r.known:
            lines.append(f"| {r.a} | {r.b} | {tokens} | (none ≥ {MIN_GAP:.0%}) | | |")
        for k in r.known:
            rank, rank_line = ("—" if k[key] is None else str(k[key]) for key in RANKS)
            lines.append(
                f"| {r.a} | {r.b} | {tokens} | {k['marker']} {k['direction']} "
                f"({k['freq_a']:.0%} → {k['freq_b']:.0%}) | {rank} | {rank_line} |"
            )
    lines += ["", "First three labels per direction:", ""]
    for r in results:
        lines.append(
            f"- {r.a} vs {r.b}: B>A: {'; '.join(r.top_labels['B>A']) or '—'} · "
            f"A>B: {'; '.join(r.top_labels['A>B']) or '—'}"
        )
    lines.append("")
    return lines
