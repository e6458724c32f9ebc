"""Does the SAE fit what the reader gives it? The FVU of the first vectors of an encode.

An SAE read at the wrong layer, hook point or model, or with the wrong input normalisation,
still produces sparse codes, and every analysis downstream still runs; only the reconstruction
shows the mismatch. Every encode measures it on its first :data:`CHECK_TOKENS` vectors, records
it in the store's manifest (``sae_check``) and warns above :data:`FVU_WARNING`.
"""

from __future__ import annotations

import sys

import torch

from .models import fraction_unexplained

CHECK_TOKENS = 512
FVU_WARNING = 0.5


class ReconstructionCheck:
    """Collects the first vectors an SAE encodes and measures how well it reconstructs them."""

    def __init__(self, sae, tokens: int = CHECK_TOKENS) -> None:
        self.sae = sae
        self.tokens = tokens
        self._inputs: list[torch.Tensor] = []
        self._seen = 0
        self.result: dict | None = None

    @property
    def done(self) -> bool:
        """True once enough vectors were seen (or :meth:`finish` ran)."""
        return self.result is not None

    @torch.inference_mode()
    def add(self, x: torch.Tensor) -> None:
        """Take (the first rows of) a batch of input vectors ``[n, d_in]``."""
        if self.done or x.shape[0] == 0:
            return
        rows = x[: self.tokens - self._seen]
        self._inputs.append(rows.detach())
        self._seen += rows.shape[0]
        if self._seen >= self.tokens:
            self.finish()

    @torch.inference_mode()
    def finish(self) -> dict | None:
        """The FVU of the vectors seen so far (None with fewer than two)."""
        if self.result is None and self._seen >= 2:
            x = torch.cat(self._inputs)
            recon = self.sae(x)
            fvu = float(fraction_unexplained(x.float(), recon.float()))
            self.result = {"fvu": round(fvu, 4), "tokens": int(x.shape[0])}
            self._inputs = []
        return self.result


def warn_if_poor(result: dict | None, reader: dict, sae_reader: dict | None) -> bool:
    """Print a warning naming the likely causes when the FVU is above :data:`FVU_WARNING`;
    True if it did."""
    if not result or result["fvu"] <= FVU_WARNING:
        return False
    expected = sae_reader or {}
    trained = (
        f"{expected.get('name') or 'an unrecorded model'}, "
        f"{expected.get('site') or 'resid_post'} of layer {expected.get('layer')}"
    )
    print(
        f"warning: the SAE reconstructs the first {result['tokens']} token vectors with FVU "
        f"{result['fvu']:.2f} (above {FVU_WARNING}): it does not fit what the reader gives it. "
        f"Likely causes: the wrong reader model (read: {reader.get('name')}; the SAE was trained "
        f"on {trained}), the wrong layer or hook point, or a missing input normalisation "
        "(docs/models.md).",
        file=sys.stderr,
    )
    return True
