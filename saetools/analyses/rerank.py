"""Pointwise LLM reranking of search results: each of the first N documents is scored 0-10
against the query, one cached request per document; results are reordered by that score, the
search score breaking ties, and documents the LLM could not score keep their place after the
scored ones."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..llm.client import LLMEstimate

SYSTEM = "You rate how well a text matches a description. Answer with a single number from 0 to 10."


def rerank_messages(query: str, text: str) -> list[dict]:
    """One rating request."""
    user = (
        f'Description: "{query}"\n\nText: {" ".join(text.split())[:800]}\n\n'
        "How well does the text match the description, from 0 (not at all) to 10 (perfectly)?"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def rerank_estimate(n: int) -> LLMEstimate:
    """Size of reranking ``n`` results: one request of ~250 prompt tokens each."""
    return LLMEstimate(n, n * 250, n * 8)


def parse_rating(text: str) -> float:
    """The first number from 0 to 10 in the reply; ValueError if there is none."""
    for value in re.findall(r"\d+(?:\.\d+)?", text):
        number = float(value)
        if 0 <= number <= 10:
            return number
    raise ValueError("no rating from 0 to 10")


def rerank_frame(
    frame: pd.DataFrame, store, query: str, n: int, *, llm=None, progress: bool = True
) -> pd.DataFrame:
    """Rerank the first ``n`` rows of a search result with an LLM; adds ``llm_score``."""
    from ..llm.client import LLMClient

    client = llm or LLMClient()
    head, tail = frame.head(n).copy(), frame.iloc[n:].copy()
    jobs = [
        {"messages": rerank_messages(query, text), "max_tokens": 8, "parse": parse_rating}
        for text in store.texts(head["row"].to_numpy())
    ]
    results = client.map(jobs, progress=progress, desc="reranking")
    head["llm_score"] = [r.value if r.value is not None else np.nan for r in results]
    scored = head[head["llm_score"].notna()].sort_values(
        ["llm_score", "score"], ascending=False, kind="stable"
    )
    unscored = head[head["llm_score"].isna()]
    tail["llm_score"] = np.nan
    out = pd.concat([scored, unscored, tail], ignore_index=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out.attrs.update(frame.attrs)
    out.attrs["llm_usage"] = client.usage.summary()
    return out
