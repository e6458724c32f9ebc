"""Latent labels: read ``labels.jsonl`` beside an SAE, or fall back to each latent's top tokens."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

LABELS_FILE = "labels.jsonl"
SOURCE_PREFERENCE = {"llm": 0, "keywords": 1, "tokens": 2}


def load_labels(sae_folder: str | Path | None) -> dict[int, str]:
    """Best label per latent from ``labels.jsonl`` next to the SAE (empty if there is none).

    When a latent has several labels, an LLM label beats a keyword label; among equals, the one
    with the higher ``score`` wins.
    """
    if sae_folder is None:
        return {}
    path = Path(sae_folder) / LABELS_FILE
    if not path.exists():
        return {}
    best: dict[int, tuple] = {}
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            rank = (SOURCE_PREFERENCE.get(row.get("source"), 3), -(row.get("score") or 0.0))
            latent = int(row["latent"])
            if latent not in best or rank < best[latent][0]:
                best[latent] = (rank, str(row["label"]))
    return {latent: label for latent, (_, label) in best.items()}


def top_token_labels(stores, latents, per_latent: int = 3) -> dict[int, str]:
    """Stand-in labels: the most frequent peak tokens of each latent's top examples."""
    wanted = set(int(j) for j in latents)
    counts: dict[int, Counter] = {j: Counter() for j in wanted}
    for store in stores:
        examples = store.examples
        rows = examples[examples["latent"].isin(wanted)]
        texts = store.docs["text"].to_numpy()
        for latent, row, start, end in rows[["latent", "row", "start", "end"]].itertuples(
            index=False
        ):
            token = texts[row][start:end].strip()
            if token:
                counts[int(latent)][token] += 1
    return {
        j: "tokens: " + " | ".join(repr(t) for t, _ in c.most_common(per_latent))
        for j, c in counts.items()
        if c
    }
