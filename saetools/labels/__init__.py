"""Latent labels: read ``labels.jsonl`` beside an SAE, or fall back to each latent's top tokens."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

LABELS_FILE = "labels.jsonl"
SOURCE_PREFERENCE = {"imported": -1, "llm": 0, "peak-tokens": 1, "keywords": 1, "tokens": 2}


def user_labels_path(sae_folder: str | Path | None = None, *, fingerprint: str | None = None):
    """Where labels made on this machine for an SAE go:
    ``$SAETOOLS_HOME/labels/<fingerprint>/labels.jsonl``, filed under the SAE's weight
    fingerprint (:func:`saetools.sae.io.sae_fingerprint`), so they follow the SAE wherever it is
    installed (an installed package's folder is not the place to write)."""
    from ..paths import saetools_home

    if fingerprint is None:
        from ..sae.io import folder_fingerprint

        fingerprint = folder_fingerprint(sae_folder)
    return saetools_home() / "labels" / fingerprint / LABELS_FILE


def label_rows(sae_folder: str | Path | None, *, fingerprint: str | None = None) -> list[dict]:
    """Every label row for an SAE: its own ``labels.jsonl`` and those made on this machine."""
    if sae_folder is None and fingerprint is None:
        return []
    paths = [] if sae_folder is None else [Path(sae_folder) / LABELS_FILE]
    paths.append(user_labels_path(sae_folder, fingerprint=fingerprint))
    rows = []
    for path in paths:
        if path.exists():
            rows.extend(read_label_file(path))
    return rows


def read_label_file(path: str | Path) -> list[dict]:
    """The rows of a ``labels.jsonl``, each checked: a JSON object with an integer ``latent``
    (>= 0), a string ``label`` and ``keywords`` where present, a numeric ``score``. A bad line
    is a one-line error naming the file, the line and the field: skipping it would silently
    change which label an analysis shows."""
    from ..corpus import iter_json_lines
    from ..errors import InputError

    rows = []
    for number, row in iter_json_lines(path):
        if not isinstance(row, dict):
            raise InputError("expected a JSON object", file=path, line=number)
        latent = row.get("latent")
        if isinstance(latent, bool) or not isinstance(latent, int) or latent < 0:
            raise InputError(
                f"expected a non-negative integer, got {latent!r}",
                file=path,
                line=number,
                field="latent",
            )
        for field in ("label", "keywords"):  # optional strings
            if row.get(field) is not None and not isinstance(row[field], str):
                raise InputError(
                    f"expected a string, got {row[field]!r}", file=path, line=number, field=field
                )
        score = row.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise InputError(
                f"expected a number, got {score!r}", file=path, line=number, field="score"
            )
        rows.append(row)
    return rows


def load_labels(sae_folder: str | Path | None, *, fingerprint: str | None = None) -> dict[int, str]:
    """Best label per latent for an SAE (empty if there is none).

    Labels come from ``labels.jsonl`` beside the SAE and from the labels made on this machine
    (``saetools label``, ``saetools labels import``). Per latent, an imported label wins (the
    user brought it on purpose); otherwise the label with the higher held-out ``score`` (an F1
    for both keyword and LLM labels) wins, and at equal scores an LLM label beats a keyword
    label.
    """
    return {
        latent: str(row["label"])
        for latent, row in best_label_rows(sae_folder, fingerprint).items()
    }


def match_texts(row: dict) -> tuple[str, ...]:
    """The texts a query is matched against for a label row: its label and, where a pack ships
    them and they differ, its ``keywords`` (the words around where the latent fires, kept by
    packs whose shown label is literal: an exclamation-mark latent labelled ``"!"`` is still
    found by "enthusiasm"). A latent is as close to a query as the closer of its texts."""
    label, keywords = str(row["label"]), row.get("keywords")
    return (label, str(keywords)) if keywords and keywords != label else (label,)


def match_texts_of_rows(rows) -> dict[int, tuple[str, ...]]:
    """Latent id -> :func:`match_texts` for label rows that carry keywords."""
    return {int(r["latent"]): match_texts(r) for r in rows if r.get("keywords") and r.get("label")}


def best_label_rows(sae_folder, fingerprint: str | None = None) -> dict[int, dict]:
    """The label row that wins for each latent (see :func:`load_labels`)."""
    best: dict[int, tuple] = {}
    for row in label_rows(sae_folder, fingerprint=fingerprint):
        if not row.get("label"):
            continue
        source = row.get("source")
        rank = (source != "imported", -(row.get("score") or 0.0), SOURCE_PREFERENCE.get(source, 3))
        latent = int(row["latent"])
        if latent not in best or rank < best[latent][0]:
            best[latent] = (rank, row)
    return {latent: row for latent, (_, row) in best.items()}


def label_rows_of_store(store) -> dict[int, dict]:
    """The winning label row of each labelled latent of a store's SAE (label, source, score,
    score_kind and, for LLM labels, precision, recall and pearson)."""
    return best_label_rows(store.sae_path, store.sae_fingerprint)


def label_scores_of_store(store) -> dict[int, float]:
    """The held-out score (F1) of each latent's winning label, where it has one."""
    rows = best_label_rows(store.sae_path, store.sae_fingerprint)
    return {
        j: float(r["score"]) for j, r in rows.items() if isinstance(r.get("score"), int | float)
    }


def write_user_labels(
    sae_folder: str | Path | None, rows: list[dict], *, fingerprint: str | None = None
) -> Path:
    """Merge ``rows`` into this machine's labels for the SAE (a row replaces an earlier one
    with the same latent, source and model), atomically."""
    import os

    path = user_labels_path(sae_folder, fingerprint=fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = read_label_file(path) if path.exists() else []
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
        texts = store.texts(rows["row"].to_numpy())
        for k, (latent, start, end) in enumerate(
            rows[["latent", "start", "end"]].itertuples(index=False)
        ):
            token = texts[k][start:end].strip()
            if token:
                counts[int(latent)][token] += 1
    return {
        j: "tokens: " + " | ".join(repr(t) for t, _ in c.most_common(per_latent))
        for j, c in counts.items()
        if c
    }


def labels_of_store(store) -> dict[int, str]:
    """The best labels of the SAE a store was encoded with (empty if it has none)."""
    return load_labels(store.sae_path, fingerprint=store.sae_fingerprint)


_LABEL_INDEXES: dict = {}  # (SAE fingerprint, labels) -> LabelIndex, reused by repeated queries


def label_index_of_store(store, *, required: bool, progress: bool = False):
    """The :class:`~saetools.labels.similarity.LabelIndex` of a store's SAE labels; None (or an
    error if ``required``) when the SAE has no labels. Kept for the last few label sets."""
    from ..errors import SaetoolsError
    from .contexts import context_files
    from .similarity import index_of_label_rows

    rows = label_rows_of_store(store)
    if not rows:
        if required:
            raise SaetoolsError(
                f"{store.folder}: the SAE of this store ({store.sae_path}) has no labels.jsonl; "
                "label it first (`saetools label`) or use an SAE with labels"
            )
        return None
    stamp = []  # a context file written since makes a new index
    for path in context_files(store.sae_path, store.sae_fingerprint):
        if path.is_file():
            stat = path.stat()
            stamp.append((str(path), stat.st_size, stat.st_mtime_ns))
    shown = tuple(sorted((j, match_texts(r)) for j, r in rows.items()))
    key = (store.sae_fingerprint, str(store.sae_path), hash(shown), tuple(stamp))
    if key not in _LABEL_INDEXES:
        if len(_LABEL_INDEXES) >= 4:
            _LABEL_INDEXES.pop(next(iter(_LABEL_INDEXES)))
        _LABEL_INDEXES[key] = index_of_label_rows(
            rows,
            store.sae_path,
            store.d_sae,
            fingerprint=store.sae_fingerprint,
            progress=progress,
        )
    return _LABEL_INDEXES[key]


def user_label_summary(folder) -> str | None:
    """One line about the labels ``saetools label`` made on this machine for an SAE."""
    from collections import defaultdict

    path = user_labels_path(folder)
    if not path.exists():
        return None
    by_model: dict[tuple, list] = defaultdict(list)
    for row in read_label_file(path):
        by_model[(str(row.get("source")), str(row.get("model")))].append(row)
    parts = []
    for (source, model), rows in sorted(by_model.items()):
        if source == "imported":
            parts.append(f"{len(rows)} imported from {rows[0].get('origin', model)}")
            continue
        scores = sorted(r["score"] for r in rows if r.get("score_kind") == "fidelity_f1_heldout")
        median = f"{scores[len(scores) // 2]:.2f}" if scores else "n/a"
        parts.append(f"{len(rows)} by {model} (fidelity F1 median {median})")
    return "; ".join(parts) + f" — {path}"
