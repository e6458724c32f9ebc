"""The store's ``manifest.json``: what produced the vectors, and which shards are finished."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import SaetoolsError

MANIFEST = "manifest.json"
FORMAT = "saetools-store"
FORMAT_VERSION = 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, then rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(folder: Path) -> dict[str, Any]:
    """Load and check a store manifest."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise SaetoolsError(f"{folder}: not a saetools store (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise SaetoolsError(f"{path}: unreadable manifest ({exc.msg})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise SaetoolsError(f"{path}: unreadable manifest ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SaetoolsError(f"{path}: not a saetools store manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SaetoolsError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise SaetoolsError(
            f"{path}: store format {manifest['format_version']} is newer than "
            f"this saetools understands ({FORMAT_VERSION}); upgrade saetools"
        )
    return manifest


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts that must match for two stores to be comparable: reader, SAE, pooling."""
    return {
        "reader": manifest["reader"],
        "sae": manifest["sae"]["fingerprint"],
        "pooling": manifest["pooling"],
    }


def describe_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Human-readable list of what differs between two store identities."""
    parts = []
    if a["sae"] != b["sae"]:
        parts.append(f"SAE {a['sae']} vs {b['sae']}")
    if a["reader"] != b["reader"]:
        keys = sorted(
            k
            for k in set(a["reader"]) | set(b["reader"])
            if a["reader"].get(k) != b["reader"].get(k)
        )
        parts.append(
            "reader " + ", ".join(f"{k} {a['reader'].get(k)} vs {b['reader'].get(k)}" for k in keys)
        )
    if a["pooling"] != b["pooling"]:
        parts.append(f"pooling {a['pooling']} vs {b['pooling']}")
    return "; ".join(parts)
