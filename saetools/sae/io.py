"""Read and write SAE checkpoints.

Written: the SAELens layout (``cfg.json`` + ``sae_weights.safetensors``, v6 ``metadata`` block).
Read: SAELens (v6 and the older flat config), sparsify (``cfg.json`` + ``sae.safetensors``),
dictionary_learning (``ae.pt`` + ``config.json``, loaded with ``weights_only=True``), and the
published layouts in :mod:`saetools.sae.formats` (Gemma Scope, Llama Scope, Goodfire ``.pth``).
Each SAE's ``cfg.reader`` names the model and the hook point it was trained on.

Tensor conventions (SAELens): ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``,
``b_dec [d_in]``, ``threshold [d_sae]`` for JumpReLU.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import SaetoolsError
from ..readers.hooks import DEFAULT_SITE, HookPoint, parse_hook_name
from . import formats
from .models import SAE, SAEConfig, build_sae

SAELENS_CONFIG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
DICTIONARY_LEARNING_WEIGHTS = "ae.pt"
SAELENS_ARCH = {"topk": "topk", "relu": "standard", "jumprelu": "jumprelu", "batchtopk": "jumprelu"}
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def sae_tensors(sae: SAE, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The SAELens-named tensors of an SAE (contiguous, on CPU, optionally cast)."""
    tensors = {
        "W_enc": sae.W_enc.detach(),
        "W_dec": sae.W_dec.detach(),
        "b_enc": sae.b_enc.detach(),
        "b_dec": sae.b_dec.detach(),
    }
    if hasattr(sae, "threshold"):
        tensors["threshold"] = sae.threshold.detach()
    return {name: t.to("cpu", dtype or t.dtype).contiguous().clone() for name, t in tensors.items()}


def saelens_config(sae: SAE, dtype: torch.dtype) -> dict[str, Any]:
    """SAELens v6 ``cfg.json`` contents; saetools' own fields go in ``metadata.saetools``."""
    cfg = sae.cfg
    reader = cfg.reader or {}
    layer = reader.get("layer")
    site = reader.get("site") or DEFAULT_SITE
    config: dict[str, Any] = {
        "architecture": SAELENS_ARCH[cfg.architecture],
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": DTYPE_NAMES.get(dtype, "float32"),
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": cfg.input_norm,
        "reshape_activations": "none",
        "metadata": {
            "model_name": reader.get("name"),
            "hook_name": None if layer is None else HookPoint(int(layer), site).name(),
            "hook_head_index": None,
            "prepend_bos": True,
            "context_size": reader.get("window"),
            "sae_lens_version": "6.0.0",
            "saetools": {
                "version": __version__,
                "architecture": cfg.architecture,
                "k": cfg.k,
                "tied": cfg.tied,
                "reader": cfg.reader,
                "extra": cfg.extra,
            },
        },
    }
    if cfg.architecture == "topk":
        config["k"] = cfg.k
    return config


def save_sae(sae: SAE, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``sae`` to ``folder`` in the SAELens layout (files replaced atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = sae_tensors(sae, dtype)
    weights = folder / SAELENS_WEIGHTS
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.chmod(tmp, 0o644)
    os.replace(tmp, weights)
    _atomic_write_json(folder / SAELENS_CONFIG, saelens_config(sae, tensors["W_enc"].dtype))
    return folder


def _build(cfg: SAEConfig, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None) -> SAE:
    """Instantiate an SAE and copy tensors into it, checking shapes."""
    sae = build_sae(cfg)
    expected = {
        "W_enc": (cfg.d_in, cfg.d_sae),
        "W_dec": (cfg.d_sae, cfg.d_in),
        "b_enc": (cfg.d_sae,),
        "b_dec": (cfg.d_in,),
    }
    if hasattr(sae, "threshold"):
        expected["threshold"] = (cfg.d_sae,)
    for name, shape in expected.items():
        if name not in tensors:
            raise SaetoolsError(f"SAE checkpoint lacks tensor '{name}'")
        if tuple(tensors[name].shape) != shape:
            raise SaetoolsError(
                f"SAE tensor '{name}' has shape {tuple(tensors[name].shape)}, expected {shape}"
            )
    target_dtype = dtype or tensors["W_enc"].dtype
    sae.to(target_dtype)
    with torch.no_grad():
        sae.W_enc.copy_(tensors["W_enc"])
        sae.b_enc.copy_(tensors["b_enc"])
        sae.b_dec.copy_(tensors["b_dec"])
        if sae._W_dec is not None:
            sae._W_dec.copy_(tensors["W_dec"])
        elif not torch.equal(tensors["W_dec"].to(target_dtype), sae.W_dec):
            raise SaetoolsError("checkpoint says tied weights but W_dec != W_enc.T")
        if "threshold" in expected:
            sae.threshold.copy_(tensors["threshold"])
            if hasattr(sae, "log_threshold"):
                sae.log_threshold.copy_(sae.threshold.clamp_min(1e-12).log())
    return sae.eval()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SaetoolsError(f"{path}: cannot read config ({exc})") from None


def _load_saelens(folder: Path, dtype) -> SAE:
    raw = _read_json(folder / SAELENS_CONFIG)
    tensors = load_file(str(folder / SAELENS_WEIGHTS))
    meta = raw.get("metadata") or {}
    ours = meta.get("saetools") or {}
    arch = raw.get("architecture", "standard")
    act = raw.get("activation_fn_str") or "relu"
    kwargs = raw.get("activation_fn_kwargs") or {}
    norm = raw.get("normalize_activations") or "none"
    input_norm = "none"
    if norm in ("constant_norm_rescale", "layer_norm"):
        input_norm = norm
    elif norm == "expected_average_only_in":
        # a fixed factor: folded into the weights (x' = x * factor), as SAELens does
        factor = raw.get("norm_scaling_factor") or meta.get("norm_scaling_factor")
        if factor:
            tensors = dict(tensors)
            tensors["W_enc"] = tensors["W_enc"] * float(factor)
            tensors["W_dec"] = tensors["W_dec"] / float(factor)
            tensors["b_dec"] = tensors["b_dec"] / float(factor)
    elif norm != "none":
        raise SaetoolsError(f"{folder}: normalize_activations='{norm}' is not supported")
    if "scaling_factor" in tensors and not torch.all(tensors["scaling_factor"] == 1):
        raise SaetoolsError(f"{folder}: a fine-tuning scaling_factor is not supported")
    if ours.get("architecture"):
        architecture = ours["architecture"]
    elif arch == "topk" or act == "topk":
        architecture = "topk"
    elif arch == "standard" and act == "relu":
        architecture = "relu"
    elif arch in ("jumprelu", "batchtopk"):
        architecture = "jumprelu"
    else:
        raise SaetoolsError(f"{folder}: SAELens architecture '{arch}' ({act}) is not supported")
    k = ours.get("k") or raw.get("k") or kwargs.get("k")
    flat = "hook_name" in raw or "hook_layer" in raw  # the pre-6 config has no metadata block
    hook_name = raw.get("hook_name") if flat else meta.get("hook_name")
    hook = parse_hook_name(hook_name) if hook_name else None
    reader = formats.reader_info(raw.get("model_name") if flat else meta.get("model_name"), hook)
    cfg = SAEConfig(
        architecture=architecture,
        d_in=int(raw["d_in"]),
        d_sae=int(raw["d_sae"]),
        k=None if k is None else int(k),
        apply_b_dec_to_input=bool(raw.get("apply_b_dec_to_input", True)),
        tied=bool(ours.get("tied", False)),
        reader=ours.get("reader") or reader,
        extra=ours.get("extra") or {},
        input_norm=input_norm,
    )
    return _build(cfg, tensors, dtype)


def _hook_of_folder(name: str) -> HookPoint | None:
    """The hook point a sparsify folder is named after (``layers.8``, ``layers.8.mlp``)."""
    try:
        return parse_hook_name(name)
    except SaetoolsError:
        return None


def _load_sparsify(folder: Path, dtype) -> SAE:
    raw = _read_json(folder / SAELENS_CONFIG)
    tensors = load_file(str(folder / SPARSIFY_WEIGHTS))
    if raw.get("skip_connection") or "W_skip" in tensors:
        raise SaetoolsError(f"{folder}: sparsify skip connections are not supported")
    activation = raw.get("activation", "topk")
    if activation != "topk":
        raise SaetoolsError(
            f"{folder / SAELENS_CONFIG}: sparsify activation '{activation}' is not supported "
            "(saetools reads topk sparsify SAEs)"
        )
    enc = tensors["encoder.weight"]
    d_sae, d_in = enc.shape
    cfg = SAEConfig(
        architecture="topk",
        d_in=int(raw.get("d_in", d_in)),
        d_sae=int(d_sae),
        k=int(raw["k"]),
        apply_b_dec_to_input=not raw.get("transcode", False),
        reader=formats.reader_info(None, _hook_of_folder(folder.name)),
    )
    mapped = {
        "W_enc": enc.t(),
        "b_enc": tensors["encoder.bias"],
        "W_dec": tensors["W_dec"],
        "b_dec": tensors["b_dec"],
    }
    return _build(cfg, mapped, dtype)


def _load_dictionary_learning(folder: Path, dtype) -> SAE:
    raw = _read_json(folder / "config.json") if (folder / "config.json").exists() else {}
    trainer = raw.get("trainer", {})
    state = torch.load(folder / DICTIONARY_LEARNING_WEIGHTS, map_location="cpu", weights_only=True)
    dict_class = trainer.get("dict_class", "")
    layer = trainer.get("layer")
    hook = None if layer is None else HookPoint(int(layer))
    reader = formats.reader_info(trainer.get("lm_name"), hook)
    if "W_enc" in state:  # JumpReluAutoEncoder: pre = x @ W_enc + b_enc
        d_in, d_sae = state["W_enc"].shape
        cfg = SAEConfig("jumprelu", d_in, d_sae, None, apply_b_dec_to_input=False, reader=reader)
        return _build(cfg, dict(state), dtype)
    enc = state["encoder.weight"]
    d_sae, d_in = enc.shape
    mapped = {
        "W_enc": enc.t(),
        "b_enc": state["encoder.bias"],
        "W_dec": state["decoder.weight"].t(),
    }
    if "bias" in state:  # standard AutoEncoder: relu(encoder(x - bias)), decoder(f) + bias
        mapped["b_dec"] = state["bias"]
        cfg = SAEConfig("relu", d_in, d_sae, None, reader=reader)
        return _build(cfg, mapped, dtype)
    mapped["b_dec"] = state["b_dec"]
    k = int(state["k"]) if "k" in state else int(trainer.get("k", 0))
    threshold = state.get("threshold")
    if "BatchTopK" in dict_class and threshold is not None and float(threshold.max()) >= 0:
        mapped["threshold"] = (
            threshold.expand(d_sae).clone() if threshold.numel() == 1 else threshold
        )
        cfg = SAEConfig("batchtopk", d_in, d_sae, k, reader=reader)
    else:
        cfg = SAEConfig("topk", d_in, d_sae, k, reader=reader)
    return _build(cfg, mapped, dtype)


def detect_format(path: str | Path) -> tuple[str, Path]:
    """Return ``(format, path)`` for an SAE folder, a weights file inside one, or a ``.pth``
    state dict (``path`` is then the file); a hub reference is fetched first
    (:mod:`saetools.sae.hub`)."""
    from .hub import resolve_sae_path

    path = resolve_sae_path(path)
    if path.is_file():
        if path.suffix in formats.TORCH_SUFFIXES and path.name != DICTIONARY_LEARNING_WEIGHTS:
            return "torch", path
        path = path.parent
    if not path.is_dir():
        raise SaetoolsError(f"{path}: no such SAE folder")
    if (path / SAELENS_WEIGHTS).exists() and (path / SAELENS_CONFIG).exists():
        return "saelens", path
    if (path / SPARSIFY_WEIGHTS).exists() and (path / SAELENS_CONFIG).exists():
        return "sparsify", path
    if (path / DICTIONARY_LEARNING_WEIGHTS).exists():
        return "dictionary_learning", path
    if (path / formats.GEMMA_SCOPE_WEIGHTS).exists():
        return "gemma_scope", path
    if (path / formats.LLAMA_SCOPE_CONFIG).exists() and formats.llama_scope_weights(path):
        return "llama_scope", path
    state_dict = formats.torch_state_dict_file(path)
    if state_dict is not None:
        return "torch", state_dict
    subfolders = sorted(p.name for p in path.iterdir() if p.is_dir())
    hint = f" (choose one of its subfolders: {', '.join(subfolders[:6])})" if subfolders else ""
    raise SaetoolsError(
        f"{path}: not an SAE checkpoint (SAELens, sparsify, dictionary_learning, Gemma Scope, "
        f"Llama Scope or a .pth state dict){hint}"
    )


def _external(loader):
    """A loader of :mod:`saetools.sae.formats` as ``(path, dtype) -> SAE``."""

    def load(path: Path, dtype) -> SAE:
        cfg, tensors = loader(path)
        return _build(cfg, tensors, dtype)

    return load


LOADERS = {
    "saelens": _load_saelens,
    "sparsify": _load_sparsify,
    "dictionary_learning": _load_dictionary_learning,
    "gemma_scope": _external(formats.load_gemma_scope),
    "llama_scope": _external(formats.load_llama_scope),
    "torch": _external(formats.load_torch_state_dict),
}


def load_sae(path: str | Path, dtype: torch.dtype | None = torch.float32) -> SAE:
    """Load an SAE from a local folder or file in any layout :func:`detect_format` knows.

    ``dtype`` casts the weights (default float32 for CPU inference); ``None`` keeps the stored one.
    """
    fmt, found = detect_format(path)
    try:
        return LOADERS[fmt](found, dtype)
    except KeyError as exc:
        raise SaetoolsError(f"{found}: {fmt} checkpoint lacks {exc}") from None
    except pickle.UnpicklingError:
        # weights_only=True refused an object that is not a plain tensor or container: loading
        # it would have run code from the file
        weights = found / DICTIONARY_LEARNING_WEIGHTS if found.is_dir() else found
        raise SaetoolsError(
            f"{weights}: refused: the file holds Python objects "
            "other than tensors (loading it would run code from it)"
        ) from None
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SaetoolsError(f"{found}: unreadable {fmt} checkpoint ({first})") from None


def sae_fingerprint(sae: SAE) -> str:
    """Short SHA-256 of an SAE's weights as float32 (and so of its k): the one identity of an
    SAE, wherever and in whichever format it is installed. Stores record it; labels made on
    this machine are filed under it."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(sae_tensors(sae, torch.float32).items()):
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


_FOLDER_FINGERPRINTS: dict[tuple, str] = {}


def folder_fingerprint(folder: str | Path) -> str:
    """:func:`sae_fingerprint` of the SAE in ``folder`` (remembered per process while its files
    are unchanged)."""
    _, found = detect_format(folder)
    weights = {".safetensors", ".pt", ".pth", ".npz", ".json"}
    files = (
        [found]
        if found.is_file()
        else sorted(p for p in found.rglob("*") if p.suffix in weights and p.is_file())
    )
    key = (str(found.resolve()),) + tuple(
        (str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files
    )
    if key not in _FOLDER_FINGERPRINTS:
        _FOLDER_FINGERPRINTS[key] = sae_fingerprint(load_sae(folder))
    return _FOLDER_FINGERPRINTS[key]


def check_compatible(sae: SAE, reader, where: str | Path | None = None) -> None:
    """Refuse an SAE whose input width differs from the reader's."""
    if sae.cfg.d_in != reader.d_model:
        raise SaetoolsError(
            f"{where or 'SAE'}: SAE d_in {sae.cfg.d_in} does not match the width "
            f"{reader.d_model} of reader {reader.name}"
        )
