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

    ``acts`` is ``[n_tokens, d_model]`` on the reader's device (the SAE runs there too);
    ``tokens[i]`` is the text of token ``i`` and ``offsets[i]`` its ``(start, end)`` character
    span in the document, for highlighting.
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


def resolve_dtype(dtype: str | torch.dtype, device: torch.device | None = None) -> torch.dtype:
    """Map a dtype name (``bfloat16``, ``float32``, ``float16`` or short forms) to a torch dtype;
    ``auto`` is :func:`native_dtype` of ``device`` (default CPU)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype.lower() == "auto":
        return native_dtype(device or torch.device("cpu"))
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        from ..errors import SaetoolsError

        raise SaetoolsError(
            f"unknown dtype '{dtype}' (choose from auto, {', '.join(sorted(DTYPES))})"
        ) from None


BF16_SPEEDUP_NEEDED = 1.3
"""bf16 is chosen on a CPU only where a bf16 matmul runs at least this much faster than fp32."""


def native_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively, else fp32.

    On CUDA: bf16 where the GPU supports it. On a CPU the answer is measured once per machine (a
    bf16 and an fp32 matmul of a reader's shape, ~0.2 s) and remembered in
    ``$SAETOOLS_HOME/dtype-probe.json``: CPUs without AVX512-BF16 or AMX emulate bf16 and run it
    several times slower than fp32.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type != "cpu":
        return torch.float32
    probe = cpu_dtype_probe()
    return torch.bfloat16 if probe["choice"] == "bfloat16" else torch.float32


def cpu_description() -> str:
    """This CPU's model name, instruction set level and core count, and the dtype ``auto``
    chooses on it (for benchmark output)."""
    return f"CPU {_cpu_key()}; auto dtype {cpu_dtype_probe()['choice']}"


def _cpu_key() -> str:
    """This CPU's model name, instruction set level, core count and torch version."""
    import os
    import platform

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), model)
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{model} | {capability} | {os.cpu_count()} cores | torch {torch.__version__}"


def _matmul_seconds(dtype: torch.dtype, repeats: int = 8) -> float:
    """Best time of a [512, 576] x [576, 1536] matmul (a small reader's MLP) in ``dtype``."""
    import time

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 576, generator=generator).to(dtype)
    w = torch.randn(1536, 576, generator=generator).to(dtype)
    torch.nn.functional.linear(x, w)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(x, w)
        best = min(best, time.perf_counter() - start)
    return best


def cpu_dtype_probe(refresh: bool = False) -> dict:
    """The measured bf16 and fp32 matmul times of this CPU and the dtype chosen from them,
    cached per machine (see :func:`native_dtype`)."""
    import json
    import os

    from ..paths import saetools_home

    path = saetools_home() / "dtype-probe.json"
    key = _cpu_key()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if refresh or not isinstance(known.get(key), dict) or "choice" not in known[key]:
        fp32, bf16 = _matmul_seconds(torch.float32), _matmul_seconds(torch.bfloat16)
        choice = "bfloat16" if bf16 * BF16_SPEEDUP_NEEDED <= fp32 else "float32"
        known[key] = {"float32_s": fp32, "bfloat16_s": bf16, "choice": choice}
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    return known[key]


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None picks CUDA when available; otherwise the named device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from ..errors import SaetoolsError

        raise SaetoolsError(f"device '{device}' requested but CUDA is not available")
    return torch.device(device)


def iter_parts(reader, texts: Sequence[str]) -> Iterator[tuple[int, TokenActivations, bool]]:
    """``(doc, part, last)`` for every document: the reader's own parts where it reads long
    documents in parts (:meth:`saetools.readers.HFReader.iter_parts`), else one part each."""
    if hasattr(reader, "iter_parts"):
        yield from reader.iter_parts(texts)
        return
    for doc, item in enumerate(reader.iter_activations(texts)):
        yield doc, item, True
