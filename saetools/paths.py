"""Where saetools keeps its caches ($SAETOOLS_HOME, default ~/.cache/saetools)."""

from __future__ import annotations

import os
from pathlib import Path


def saetools_home() -> Path:
    """Return the cache root: ``$SAETOOLS_HOME`` or ``~/.cache/saetools`` (created on demand)."""
    root = Path(os.environ.get("SAETOOLS_HOME") or Path.home() / ".cache" / "saetools")
    root.mkdir(parents=True, exist_ok=True)
    return root
