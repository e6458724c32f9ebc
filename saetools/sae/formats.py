"""Readers for SAE checkpoints published in other layouts, each mapped to saetools' SAEs.

Every loader returns an :class:`~saetools.sae.models.SAEConfig` and the SAELens-named tensors
(``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc``, ``b_dec``, ``threshold``), with
the hook point the SAE was trained on in ``cfg.reader`` (``name``, ``layer``, ``site``).

- Gemma Scope (``params.npz``): JumpReLU, ``pre = x @ W_enc + b_enc``, ``f = pre * (pre >
  threshold)``; read with ``allow_pickle=False``.
- Llama Scope (``hyperparams.json`` + ``checkpoints/final.safetensors``): ``encoder.weight
  [d_sae, d_in]``, ``decoder.weight [d_in, d_sae]``, biases; JumpReLU with one scalar threshold;
  dataset-wise normalisation (inputs scaled by sqrt(d_model) / ``dataset_average_activation_norm
  .in``, outputs by ``out`` / sqrt(d_model)), folded into the weights.
- Goodfire and similar ``.pth`` state dicts: ``encoder_linear``/``decoder_linear`` (or
  ``encoder``/``decoder``) ``nn.Linear`` weights, ReLU, no decoder bias on the input; read with
  ``weights_only=True``, so a pickled object never runs.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SaetoolsError
from ..readers.hooks import HookPoint, parse_hook_name
from .models import SAEConfig

GEMMA_SCOPE_WEIGHTS = "params.npz"
LLAMA_SCOPE_CONFIG = "hyperparams.json"
LLAMA_SCOPE_WEIGHTS = ("checkpoints/final.safetensors", "final.safetensors")
TORCH_SUFFIXES = (".pth", ".pt")

MODEL_IDS = {
    "gpt2": "openai-community/gpt2",
    "gpt2-small": "openai-community/gpt2",
    "gemma-2-2b": "google/gemma-2-2b",
    "gemma-2-2b-it": "google/gemma-2-2b-it",
    "gemma-2-9b": "google/gemma-2-9b",
    "gemma-2-9b-it": "google/gemma-2-9b-it",
    "gemma-2-27b": "google/gemma-2-27b",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "meta-llama/llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "pythia-70m-deduped": "EleutherAI/pythia-70m-deduped",
    "pythia-160m-deduped": "EleutherAI/pythia-160m-deduped",
}
"""TransformerLens model names (as SAE configs write them) -> Hugging Face model ids."""


def model_id(name: str | None) -> str | None:
    """The Hugging Face id of a model an SAE config names (TransformerLens names mapped)."""
    if name is None:
        return None
    return MODEL_IDS.get(str(name).lower(), name)


def reader_info(name: str | None, hook: HookPoint | None) -> dict[str, Any]:
    """``cfg.reader`` for an SAE trained on ``name`` at ``hook``."""
    info: dict[str, Any] = {"name": model_id(name), "layer": None if hook is None else hook.layer}
    if hook is not None:
        info["site"] = hook.site
    return info


def _config(architecture: str, tensors: dict, reader: dict, fmt: str) -> SAEConfig:
    """The config of a published SAE: shapes from ``W_enc``, no decoder bias on the input."""
    d_in, d_sae = tensors["W_enc"].shape
    return SAEConfig(
        architecture,
        int(d_in),
        int(d_sae),
        None,
        apply_b_dec_to_input=False,
        reader=reader,
        extra={"format": fmt},
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SaetoolsError(f"{path}: cannot read config ({exc})") from None
    if not isinstance(data, dict):
        raise SaetoolsError(f"{path}: expected a JSON object")
    return data


# ---- Gemma Scope -------------------------------------------------------------------------

_GEMMA_SCOPE = re.compile(r"gemma-scope-(2b|9b|27b)-(pt|it)-(res|mlp|att|transcoders)")


def gemma_scope_reader(folder: Path) -> dict[str, Any]:
    """Model and hook point of a Gemma Scope SAE, read from its path (the hub layout
    ``google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71``)."""
    text = str(folder)
    layer = re.search(r"layer_(\d+)", text)
    release = _GEMMA_SCOPE.search(text)
    if release is None:
        hook = None if layer is None else HookPoint(int(layer.group(1)))
        return reader_info(None, hook)
    size, kind, site = release.groups()
    if site in ("att", "transcoders"):
        reads = "per-head attention outputs (hook_z)" if site == "att" else "MLP inputs"
        raise SaetoolsError(
            f"{folder}: Gemma Scope '{site}' SAEs read {reads}, which saetools does not read; "
            "use a -res or -mlp SAE"
        )
    name = f"google/gemma-2-{size}" + ("-it" if kind == "it" else "")
    site = {"res": "resid_post", "mlp": "mlp_out"}[site]
    hook = None if layer is None else HookPoint(int(layer.group(1)), site)
    return reader_info(name, hook)


def load_gemma_scope(folder: Path) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """A Gemma Scope ``params.npz`` (JumpReLU; no decoder bias on the input)."""
    path = folder / GEMMA_SCOPE_WEIGHTS
    try:
        with np.load(path, allow_pickle=False) as params:
            arrays = {key.lower(): np.asarray(params[key]) for key in params.files}
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise SaetoolsError(f"{path}: refused or unreadable ({exc})") from None
    names = {"w_enc": "W_enc", "w_dec": "W_dec", "b_enc": "b_enc", "b_dec": "b_dec"}
    names["threshold"] = "threshold"
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise SaetoolsError(f"{path}: not a Gemma Scope checkpoint (lacks {', '.join(missing)})")
    tensors = {
        ours: torch.from_numpy(arrays[key].astype(np.float32)) for key, ours in names.items()
    }
    return _config("jumprelu", tensors, gemma_scope_reader(folder), "gemma_scope"), tensors


# ---- Llama Scope -------------------------------------------------------------------------


def llama_scope_weights(folder: Path) -> Path | None:
    """The weights file of a Llama Scope folder (None when there is none)."""
    for name in LLAMA_SCOPE_WEIGHTS:
        if (folder / name).exists():
            return folder / name
    return None


def load_llama_scope(folder: Path) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """A Llama Scope folder: JumpReLU with one threshold, dataset-wise normalisation folded in."""
    from safetensors.torch import load_file

    hp = _read_json(folder / LLAMA_SCOPE_CONFIG)
    act = hp.get("act_fn", "jumprelu")
    if act not in ("jumprelu", "relu"):
        raise SaetoolsError(f"{folder / LLAMA_SCOPE_CONFIG}: act_fn '{act}' is not supported")
    if hp.get("hook_point_out", hp.get("hook_point_in")) != hp.get("hook_point_in"):
        raise SaetoolsError(
            f"{folder / LLAMA_SCOPE_CONFIG}: a transcoder ({hp.get('hook_point_in')} -> "
            f"{hp.get('hook_point_out')}) is not an SAE saetools can read"
        )
    raw = load_file(str(llama_scope_weights(folder)))
    enc, dec = raw["encoder.weight"].float(), raw["decoder.weight"].float()
    d_sae, d_in = enc.shape
    b_dec = raw["decoder.bias"].float() if "decoder.bias" in raw else torch.zeros(d_in)
    tensors = {"W_enc": enc.t(), "W_dec": dec.t(), "b_dec": b_dec}
    tensors["b_enc"] = raw["encoder.bias"].float()
    norm = hp.get("norm_activation", "none")
    if norm == "dataset-wise":
        averages = hp["dataset_average_activation_norm"]
        scale_in = math.sqrt(d_in) / float(averages["in"])
        scale_out = math.sqrt(d_in) / float(averages["out"])
        # x' = x * scale_in is encoded; the reconstruction is divided by scale_out
        tensors["W_enc"] = tensors["W_enc"] * scale_in
        tensors["W_dec"] = tensors["W_dec"] / scale_out
        tensors["b_dec"] = tensors["b_dec"] / scale_out
    elif norm not in ("none", None):
        raise SaetoolsError(
            f"{folder / LLAMA_SCOPE_CONFIG}: norm_activation '{norm}' is not supported"
        )
    if hp.get("apply_decoder_bias_to_pre_encoder"):
        raise SaetoolsError(
            f"{folder / LLAMA_SCOPE_CONFIG}: apply_decoder_bias_to_pre_encoder is not supported"
        )
    threshold = float(hp.get("jump_relu_threshold", 0.0)) if act == "jumprelu" else 0.0
    tensors["threshold"] = torch.full((int(d_sae),), threshold)
    name = hp.get("model_name")
    if name is None and "Llama3_1-8B" in str(folder):
        name = "meta-llama/Llama-3.1-8B"
    reader = reader_info(name, parse_hook_name(hp["hook_point_in"]))
    return _config("jumprelu", tensors, reader, "llama_scope"), tensors


# ---- torch state dicts (Goodfire) ----------------------------------------------------------

_GOODFIRE = re.compile(r"(Llama-3\.\d-\d+B-Instruct)-SAE-l(\d+)")


def torch_state_dict_file(path: Path) -> Path | None:
    """The single ``.pth``/``.pt`` state dict at ``path`` (a file, or a folder holding one)."""
    if path.is_file():
        return path if path.suffix in TORCH_SUFFIXES else None
    files = [p for p in path.iterdir() if p.is_file() and p.suffix in TORCH_SUFFIXES]
    return files[0] if len(files) == 1 else None


def load_torch_state_dict(path: Path) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """A ReLU SAE saved as a state dict of two ``nn.Linear`` layers (Goodfire's releases):
    ``f = relu(x @ W_enc + b_enc)``, ``x^ = f @ W_dec + b_dec``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise SaetoolsError(f"{path}: expected a state dict, found {type(state).__name__}")
    for prefix in ("encoder_linear", "encoder"):
        if f"{prefix}.weight" in state:
            break
    else:
        keys = ", ".join(sorted(map(str, state))[:6])
        raise SaetoolsError(f"{path}: not an SAE state dict (keys: {keys})")
    dec = prefix.replace("encoder", "decoder")
    tensors = {
        "W_enc": state[f"{prefix}.weight"].float().t(),
        "b_enc": state[f"{prefix}.bias"].float(),
        "W_dec": state[f"{dec}.weight"].float().t(),
        "b_dec": state[f"{dec}.bias"].float(),
    }
    found = _GOODFIRE.search(str(path))
    reader = (
        reader_info(f"meta-llama/{found.group(1)}", HookPoint(int(found.group(2))))
        if found
        else reader_info(None, None)
    )
    return _config("relu", tensors, reader, "torch_state_dict"), tensors
