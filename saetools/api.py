"""Python API: the same operations as the CLI, taking and returning Python objects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .corpus import read_corpus
from .sae.train import TrainConfig, TrainResult


def train_sae(
    data: str | Path | Sequence[str],
    out: str | Path,
    *,
    reader=None,
    layer: int | None = None,
    field: str = "text",
    resume: bool = False,
    keep_activations: bool = False,
    progress: bool = True,
    **options,
) -> TrainResult:
    """Train an SAE on a reader's activations over ``data`` and save it under ``out``.

    ``data`` is a data file (jsonl/csv/tsv/parquet/txt) or a list of texts; ``reader`` is a reader
    object or a name for :func:`saetools.readers.load_reader` (default: the embedded SmolLM2);
    ``options`` are :class:`saetools.sae.train.TrainConfig` fields (``latents``, ``k``,
    ``architecture``, ``epochs``, ...).
    """
    import shutil

    from .readers import load_reader
    from .sae.activations import harvest
    from .sae.train import Trainer

    cfg = TrainConfig(**options)
    corpus = read_corpus(data, field)
    if reader is None or isinstance(reader, str):
        reader = load_reader(reader, layer, device=cfg.device, quiet=not progress)
    cache = harvest(reader, corpus.texts, Path(out) / "activations", progress=progress)
    result = Trainer(cfg, cache, out, reader_info=reader.describe(), progress=progress).train(
        resume=resume
    )
    if not keep_activations:
        shutil.rmtree(Path(out) / "activations", ignore_errors=True)
    return result
