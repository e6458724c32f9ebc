"""Latent labels: read ``labels.jsonl`` beside an SAE, or fall back to each latent's top tokens."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

LABELS_FILE = "labels.jsonl"
SOURCE_PREFERENCE = {"llm": 0, "keywords": 1, "tokens": 2}


def sae_fingerprint(sae_folder: str | Path) -> str:
    """Short SHA-256 of an SAE's weight files (identifies it wherever it is installed)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(sae_folder).glob("*.safetensors")):
        if path.name.startswith("label-embeddings"):
            continue
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def user_labels_path(sae_folder: str | Path) -> Path:
    """Where labels made on this machine for an SAE go: ``$SAETOOLS_HOME/labels/<fingerprint>/``
    (an installed package's folder is not the place to write)."""
    from ..paths import saetools_home

    return saetools_home() / "labels" / sae_fingerprint(sae_folder) / LABELS_FILE


def label_rows(sae_folder: str | Path | None) -> list[dict]:
    """Every label row for an SAE: its own ``labels.jsonl`` and those made on this machine."""
    if sae_folder is None:
        return []
    rows = []
    for path in (Path(sae_folder) / LABELS_FILE, user_labels_path(sae_folder)):
        if path.exists():
            with open(path) as fh:
                rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def load_labels(sae_folder: str | Path | None) -> dict[int, str]:
    """Best label per latent for an SAE (empty if there is none).

    Labels come from ``labels.jsonl`` beside the SAE and from the labels made on this machine
    (``saetools label``). Per latent, the label with the higher held-out ``score`` (an F1 for
    both keyword and LLM labels) wins; at equal scores an LLM label beats a keyword label.
    """
    best: dict[int, tuple] = {}
    for row in label_rows(sae_folder):
        if not row.get("label"):
            continue
        rank = (-(row.get("score") or 0.0), SOURCE_PREFERENCE.get(row.get("source"), 3))
        latent = int(row["latent"])
        if latent not in best or rank < best[latent][0]:
            best[latent] = (rank, str(row["label"]))
    return {latent: label for latent, (_, label) in best.items()}


def write_user_labels(sae_folder: str | Path, rows: list[dict]) -> Path:
    """Merge ``rows`` into this machine's labels for the SAE (a row replaces an earlier one
    with the same latent, source and model), atomically."""
    import os

    path = user_labels_path(sae_folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = []
    if path.exists():
        with open(path) as fh:
            existing = [json.loads(line) for line in fh if line.strip()]
    replaced = {(r["latent"], r.get("source"), r.get("model")) for r in rows}
    kept = [r for r in existing if (r["latent"], r.get("source"), r.get("model")) not in replaced]
    merged = sorted(kept + list(rows), key=lambda r: (r["latent"], str(r.get("source"))))
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        for row in merged:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


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
