"""Summarise a diff as plain-language hypotheses, and check them on sampled documents.

* **hypotheses**: the top significant latents of each direction (label, frequencies, two
  example snippets each) go to the LLM, which answers with up to ``n`` lines
  ``H: <hypothesis> | latents: <ids>``; each hypothesis keeps the latent ids it cites (ids not
  in the prompt are dropped).
* **verify**: for each hypothesis, ``n`` documents sampled from each side are shown one at a
  time ("does this text fit: <hypothesis>? yes or no"); the share of yes per side is reported
  next to the cited latents' frequencies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..llm.client import LLMEstimate
from ..text import snippet

SYSTEM = "You analyse differences between two sets of texts. Be concise and concrete."
VERIFY_SYSTEM = "You answer every question with a single word: yes or no."


def hypotheses_estimate(n: int, verify: int) -> LLMEstimate:
    """Size of a hypotheses job: one proposal request, then ``verify`` documents per side for
    each of ``n`` hypotheses."""
    checks = 2 * verify * n
    return LLMEstimate(1 + checks, 1500 + checks * 180, 80 * n + 40 + checks * 12)


def names_estimate(k: int) -> LLMEstimate:
    """Size of naming ``k`` clusters: one short request each."""
    return LLMEstimate(k, k * 300, k * 24)


def hypothesis_messages(frame: pd.DataFrame, top: int = 8, n: int = 3) -> tuple[list[dict], list]:
    """The prompt describing the top significant latents of each direction; and their ids."""
    lines, shown = [], []
    for direction, name in (("B>A", "more frequent in B than in A"), ("A>B", "more frequent in A")):
        part = frame[(frame["direction"] == direction) & frame["significant"]].head(top)
        if part.empty:
            continue
        lines.append(f"Features {name}:")
        for row in part.itertuples(index=False):
            shown.append(int(row.latent))
            also = ""
            if getattr(row, "size", 1) > 1:  # one property: its other latents' labels
                also = " (also: " + "; ".join(str(t) for t in row.member_labels[1:4]) + ")"
            lines.append(
                f"- [{row.latent}] {row.label}{also} (A {row.freq_a:.0%}, B {row.freq_b:.0%})"
            )
            side = row.examples_b if direction == "B>A" else row.examples_a
            for item in side[:2]:
                text = snippet(item["text"], item["start"], item["end"], 60, ("<<", ">>"))
                lines.append(f"    e.g. {text}")
    user = (
        "\n".join(lines)
        + f"\n\nState up to {n} hypotheses about how B differs from A. One per line, exactly:\n"
        "H: <hypothesis in one sentence> | latents: <ids in brackets above, comma-separated>"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}], shown


def parse_hypotheses(text: str, allowed: set[int], n: int) -> list[dict]:
    """``[{hypothesis, latents}]`` from the reply: ``H: ... | latents: ...`` lines; failing
    those (small models ignore formats), numbered or bulleted lines, or the first sentence that
    compares A and B. Cited latents are the ids of the prompt found on the line. ValueError if
    nothing usable (lines that only copy the feature list do not count)."""

    def cited(part: str) -> list[int]:
        return [int(v) for v in re.findall(r"\d+", part) if int(v) in allowed]

    def usable(sentence: str) -> bool:
        copied = re.search(r"\(A \d+%, B \d+%", sentence)
        return len(sentence.split()) >= 3 and not copied

    out = []
    for line in text.splitlines():
        match = re.match(r"\W*(?:H\d*|Hypothesis\s*\d*)\s*[:.)]\s*(.+)", line.strip(), re.I)
        if match:
            body, _, refs = match.group(1).partition("|")
            if usable(body):
                out.append({"hypothesis": body.strip().strip("\"'"), "latents": cited(refs)})
    if not out:
        for line in text.splitlines():
            match = re.match(r"\s*(?:\d+[.)]|[-*•])\s+(.+)", line)
            if match and usable(match.group(1)):
                body = match.group(1).strip()
                out.append(
                    {"hypothesis": body, "latents": cited(" ".join(re.findall(r"\[(\d+)\]", body)))}
                )
    if not out:
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            if re.search(r"\b(A|B)\b", sentence) and usable(sentence):
                out.append({"hypothesis": sentence.strip(), "latents": []})
                break
    if not out:
        raise ValueError("no hypothesis in the reply")
    return out[:n]


def verify_messages(hypothesis: str, text: str) -> list[dict]:
    """One yes/no check of a hypothesis on one document."""
    body = " ".join(text.split())[:600]
    user = f'Text: {body}\n\nDoes this text fit: "{hypothesis}"? Answer yes or no.'
    return [{"role": "system", "content": VERIFY_SYSTEM}, {"role": "user", "content": user}]


def hypotheses_for_diff(
    frame: pd.DataFrame,
    client,
    *,
    n: int = 3,
    top: int = 8,
    verify: int = 0,
    texts_a: Sequence[str] | None = None,
    texts_b: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Hypotheses about a diff: ``hypothesis``, ``latents``, the cited latents' mean
    ``freq_a``/``freq_b``, and with ``verify`` the LLM-checked shares ``verified_a``/
    ``verified_b`` on ``verify`` sampled documents per side (NaN where unchecked)."""
    from ..labels.llm import parse_yes_no

    messages, shown = hypothesis_messages(frame, top, n)
    columns = ["hypothesis", "latents", "freq_a", "freq_b", "verified_a", "verified_b"]
    if not shown:
        return pd.DataFrame(columns=columns)
    result = client.map(
        [{"messages": messages, "max_tokens": 80 * n + 40}],
        lambda t: parse_hypotheses(t, set(shown), n),
        progress=False,
    )[0]
    if result.value is None:
        return pd.DataFrame(
            [{"hypothesis": None, "latents": [], "error": result.error}],
            columns=[*columns, "error"],
        )
    by_latent = frame.set_index("latent")
    rows = []
    for item in result.value:
        cited = [j for j in item["latents"] if j in by_latent.index]
        rows.append(
            {
                "hypothesis": item["hypothesis"],
                "latents": cited,
                "freq_a": float(by_latent.loc[cited, "freq_a"].mean()) if cited else np.nan,
                "freq_b": float(by_latent.loc[cited, "freq_b"].mean()) if cited else np.nan,
                "verified_a": np.nan,
                "verified_b": np.nan,
            }
        )
    if verify and texts_a is not None and texts_b is not None and len(texts_a) and len(texts_b):
        rng = np.random.default_rng(seed)
        sample_a = rng.choice(len(texts_a), min(verify, len(texts_a)), replace=False)
        sample_b = rng.choice(len(texts_b), min(verify, len(texts_b)), replace=False)
        jobs, owners = [], []
        for k, row in enumerate(rows):
            for side, texts, sample in (("a", texts_a, sample_a), ("b", texts_b, sample_b)):
                for i in sample:
                    jobs.append(
                        {
                            "messages": verify_messages(row["hypothesis"], texts[i]),
                            "max_tokens": 12,
                            "parse": parse_yes_no,
                        }
                    )
                    owners.append((k, side))
        answers = client.map(jobs, progress=progress, desc="verifying")
        for k, row in enumerate(rows):
            for side in ("a", "b"):
                got = [
                    a.value
                    for a, owner in zip(answers, owners, strict=True)
                    if owner == (k, side) and a.value is not None
                ]
                row[f"verified_{side}"] = float(np.mean(got)) if got else np.nan
    return pd.DataFrame(rows, columns=columns)


def cluster_name_messages(latents: list[dict], snippets: list[str]) -> list[dict]:
    """A prompt asking for a short name of one cluster from its enriched latents and examples."""
    lines = [f"- {item['label']} ({item['freq_in']:.0%} of the group)" for item in latents[:5]]
    examples = [f"- {' '.join(s.split())[:200]}" for s in snippets[:3]]
    user = (
        "A group of texts is marked by these features:\n"
        + "\n".join(lines)
        + "\n\nExamples:\n"
        + "\n".join(examples)
        + "\n\nName the group in at most 6 words. Answer: NAME: <name>"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_name(text: str) -> str:
    """The name from ``NAME: ...`` or a short first line; ValueError otherwise."""
    match = re.search(r"name\s*[:\-]\s*(.+)", text, re.IGNORECASE)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    value = (match.group(1) if match else (lines[0] if lines else "")).strip().strip("\"'*.")
    if not value or len(value.split()) > 10:
        raise ValueError("no short name in the reply")
    return value


def name_clusters(clusters: pd.DataFrame, client, *, progress: bool = False) -> list:
    """An LLM name per cluster (None where the LLM gave no usable one; -1 is not named)."""
    jobs, rows = [], []
    for k, row in enumerate(clusters.itertuples(index=False)):
        if row.cluster < 0 or not row.latents:
            continue
        texts = [item["text"] for item in row.representatives]
        jobs.append({"messages": cluster_name_messages(row.latents, texts), "max_tokens": 24})
        rows.append(k)
    names: list = [None] * len(clusters)
    for k, result in zip(
        rows, client.map(jobs, parse_name, progress=progress, desc="naming"), strict=True
    ):
        names[k] = result.value
    return names
