"""The SAEs shipped inside the package, which one a reader uses by default, and what they are."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SaetoolsError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_SAE_DIR = MODELS_DIR / "smollm2-135m-l15-topk-answers"
"""The default: streamed over 10M tokens of chat answers and broad text; per latent the label
(peak tokens or keywords) that detects best on held-out text, with its keywords for query
matching (docs/default-model.md)."""
ANSWERS_20M_SAE_DIR = MODELS_DIR / "smollm2-135m-l15-topk-answers-20m"
"""The default trained on 10M tokens more (20M in all), shipped beside it and selected with
``--sae``: better reconstruction, labels and planted figures, but one search phrasing of the
planted apologies loses most of its precision with it (docs/default-model.md)."""
BROAD_SAE_DIR = MODELS_DIR / "smollm2-135m-l15-topk"
"""The first default (1.7M tokens of broad text, keyword labels), still shipped: stores made
with it keep finding their SAE and labels, and ``--sae`` selects it."""
DEFAULT_EMBEDDING_SAE_DIR = MODELS_DIR / "minilm-l6-doc-topk"


def default_sae_path(reader=None) -> Path:
    """Folder of the SAE shipped for ``reader``: the SmolLM2 layer-15 SAE for the default
    reader, the document-embedding SAE for MiniLM."""
    from ..readers.defaults import is_embedding_reader

    folder = DEFAULT_EMBEDDING_SAE_DIR if is_embedding_reader(reader) else DEFAULT_SAE_DIR
    if not (folder / "cfg.json").exists():
        raise SaetoolsError(
            f"no default SAE for this reader is installed ({folder.name}); pass --sae DIR or "
            "use --fit"
        )
    return folder


def resolve_sae(sae=None, reader=None):
    """``(SAE, path)`` for an SAE object (path None), a local path or hub reference (fetched;
    the local path), or None (the SAE shipped for ``reader``)."""
    from .hub import resolve_sae_path
    from .io import load_sae
    from .models import SAE

    if isinstance(sae, SAE):
        return sae, None
    folder = default_sae_path(reader) if sae is None else resolve_sae_path(sae)
    return load_sae(folder), folder


def pack_with_fingerprint(fingerprint: str) -> Path | None:
    """The shipped SAE folder whose weights have this fingerprint (None if none has): a store
    made with a shipped SAE finds it, and its labels, wherever the package is installed now."""
    from .io import folder_fingerprint

    for folder in sorted(p for p in MODELS_DIR.glob("*") if (p / "cfg.json").exists()):
        if folder_fingerprint(folder) == fingerprint:
            return folder
    return None


def describe_packs() -> list[str]:
    """Lines describing each shipped SAE: size, reader, FVU, labels and how it was made."""
    from ..labels import user_label_summary
    from ..labels.contexts import CONTEXTS_FILE

    folders = sorted(p for p in MODELS_DIR.glob("*") if (p / "cfg.json").exists())
    if not folders:
        return ["  (none shipped)"]
    lines = []
    for folder in folders:
        cfg = json.loads((folder / "cfg.json").read_text())
        meta = cfg.get("metadata", {}).get("saetools", {})
        default = {
            DEFAULT_SAE_DIR: " (default)",
            DEFAULT_EMBEDDING_SAE_DIR: " (default for --reader minilm)",
        }.get(folder, "")
        reader_meta = meta.get("reader") or {}
        where = (
            "document embeddings"
            if reader_meta.get("kind") == "embedding"
            else f"layer {reader_meta.get('layer')}"
        )
        prov = {}
        if (folder / "provenance.json").exists():
            prov = json.loads((folder / "provenance.json").read_text())
        ev = prov.get("training", {}).get("eval", {})
        lines.append(
            f"  {folder.name}{default}: {meta.get('architecture')} {cfg['d_sae']} latents"
            f", k {meta.get('k')}, reader {cfg['metadata'].get('model_name')} {where}; "
            f"FVU {ev.get('fvu', float('nan')):.3f}; {folder}"
        )
        labels = prov.get("labels")
        if labels:
            kinds = labels.get("chosen") or {labels.get("source", "?"): labels["count"]}
            f1 = labels.get("detection_f1_heldout") or labels.get("detection_f1") or {}
            matching = (
                "; queries also match context vectors" if (folder / CONTEXTS_FILE).is_file() else ""
            )
            lines.append(
                f"    labels: {labels['count']} ("
                + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                + f"), detection F1 median {f1.get('median')} on held-out text{matching}"
            )
        if prov.get("recipe"):
            lines.append(f"    made by: {prov['recipe']}")
        local = user_label_summary(folder)
        if local:
            lines.append(f"    labels made here: {local}")
    return lines
