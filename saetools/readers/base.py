"""What every reader returns: per document, token activations with their text spans."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch

DTYPES = {
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class TokenActivations(NamedTuple):
    """Activations of one document.

    ``acts`` is ``[n_tokens, d_model]`` on the CPU; ``tokens[i]`` is the text of token ``i`` and
    ``offsets[i]`` its ``(start, end)`` character span in the document, for highlighting.
    """

    acts: torch.Tensor
    tokens: list[str]
    offsets: np.ndarray


class Reader(Protocol):
    """A model that turns texts into per-token (or per-document) activation vectors."""

    name: str
    d_model: int

    def iter_activations(
        self, texts: Sequence[str], progress: bool = False
    ) -> Iterator[TokenActivations]:
        """Yield one :class:`TokenActivations` per text, in order."""
        ...

    def describe(self) -> dict:
        """A JSON-able description (name, layer, dtype, ...) of what produced the vectors."""
        ...


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Map a dtype name (``bfloat16``, ``float32``, ``float16`` or short forms) to a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        from ..errors import SaetoolsError

        raise SaetoolsError(
            f"unknown dtype '{dtype}' (choose from {', '.join(sorted(DTYPES))})"
        ) from None


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None picks CUDA when available; otherwise the named device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from ..errors import SaetoolsError

        raise SaetoolsError(f"device '{device}' requested but CUDA is not available")
    return torch.device(device)
