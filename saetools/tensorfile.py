"""Safetensors files written atomically and byte-for-byte reproducibly.

The safetensors writer orders ``__metadata__`` keys by a hash map, so two runs writing the same
tensors and metadata can differ in their header bytes; a shipped pack must not. The header is
rewritten here with sorted keys (the data section is untouched), and the file replaces its
destination only when complete.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np


def save_tensors(
    path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` (numpy arrays) and string ``metadata`` to ``path`` in the safetensors
    format with a sorted header, atomically (a temporary file, then a rename)."""
    from safetensors.numpy import save

    raw = save(tensors, metadata=metadata)
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned, as the writer does
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + raw[8 + size :])
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
