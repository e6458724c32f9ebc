"""Hook points: where in a transformer block a reader takes its activations.

Names follow TransformerLens, which SAELens, Gemma Scope and Llama Scope configs use:

- ``resid_pre`` L: the residual stream entering block L (``output_hidden_states[L]``);
- ``resid_post`` L: the residual stream leaving block L (``output_hidden_states[L + 1]``, the
  input of block L + 1);
- ``attn_out`` L / ``mlp_out`` L: what the attention / MLP sublayer of block L adds to the
  residual stream (after Gemma-2's post-sublayer norms, as TransformerLens defines them).

``model.layers.L`` and ``layers.L`` (sparsify, Hugging Face module names) name the output of
block L, i.e. ``resid_post`` L.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import SaetoolsError

SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out")
DEFAULT_SITE = "resid_post"


class HookPoint(NamedTuple):
    """A block (0-based) and a site in it (one of :data:`SITES`)."""

    layer: int
    site: str = DEFAULT_SITE

    def name(self) -> str:
        """The TransformerLens name, e.g. ``blocks.20.hook_resid_post``."""
        return f"blocks.{self.layer}.hook_{self.site}"


_TL = re.compile(r"^blocks\.(\d+)\.(?:attn\.|mlp\.)?hook_([a-z_]+)$")
_MODULE = re.compile(r"^(?:model\.)?(?:layers|h|blocks)[._](\d+)(?:\.(mlp|self_attn|attn))?$")


def parse_hook_name(name: str) -> HookPoint:
    """The hook point a config names (``blocks.8.hook_resid_pre``, ``model.layers.8``,
    ``layers.8.mlp``); anything saetools cannot read is a one-line error."""
    text = str(name).strip()
    match = _TL.match(text)
    if match:
        layer, site = int(match.group(1)), match.group(2)
        if site in SITES:
            return HookPoint(layer, site)
        raise SaetoolsError(
            f"hook point '{text}' is not supported: saetools reads "
            f"{', '.join('hook_' + s for s in SITES)}"
        )
    match = _MODULE.match(text)
    if match:
        module = match.group(2)
        site = {None: "resid_post", "mlp": "mlp_out"}.get(module, "attn_out")
        return HookPoint(int(match.group(1)), site)
    raise SaetoolsError(
        f"hook point '{text}' is not understood (expected e.g. blocks.12.hook_resid_post or "
        "model.layers.12)"
    )


def _first(module, names):
    for name in names:
        found = getattr(module, name, None)
        if found is not None:
            return found
    return None


def hook_module(block, site: str):
    """``(module, kind)`` to hook in ``block`` for ``site``: ``kind`` is ``pre`` (the module's
    input is the activation) or ``post`` (its output is)."""
    if site == "resid_pre":
        return block, "pre"
    if site == "resid_post":
        return block, "post"
    # Gemma 2/3 normalise each sublayer's output before adding it to the residual stream; the
    # sublayer output TransformerLens reports is the normalised one.
    sandwich = hasattr(block, "pre_feedforward_layernorm")
    if site == "attn_out":
        module = (
            block.post_attention_layernorm
            if sandwich
            else _first(block, ("self_attn", "attn", "attention"))
        )
    elif site == "mlp_out":
        module = (
            block.post_feedforward_layernorm
            if sandwich
            else _first(block, ("mlp", "feed_forward", "ffn"))
        )
    else:
        raise SaetoolsError(f"unknown hook site '{site}' (choose from {', '.join(SITES)})")
    if module is None:
        raise SaetoolsError(f"cannot find the {site} module of {type(block).__name__}")
    return module, "post"
