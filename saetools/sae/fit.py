"""Train an SAE on a reader's activations over a corpus, and the ``--fit`` SAE of a diff."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..corpus import content_key, read_corpus
from .config import TrainConfig


def train_on_corpus(
    corpus,
    out: str | Path,
    reader,
    cfg: TrainConfig,
    *,
    resume=False,
    keep_activations=False,
    progress: bool = True,
):
    """Harvest ``reader``'s activations over ``corpus`` (a :class:`saetools.corpus.Corpus`) into
    ``out/activations``, train an SAE with ``cfg`` and save it in ``out``; returns the
    :class:`saetools.sae.train.TrainResult`."""
    from .activations import harvest
    from .train import Trainer

    if progress:
        print(
            f"reader {reader.name} (layer {reader.layer}, width {reader.d_model}); "
            f"{len(corpus.documents)} documents",
            file=sys.stderr,
        )
    cache = harvest(reader, corpus.texts, Path(out) / "activations", progress=progress)
    result = Trainer(cfg, cache, out, reader_info=reader.describe(), progress=progress).train(
        resume=resume
    )
    if not keep_activations:
        shutil.rmtree(Path(out) / "activations", ignore_errors=True)
    return result


def train_streaming(
    stream, out: str | Path, reader, cfg: TrainConfig, *, resume=False, progress: bool = True
):
    """Harvest-and-train ``cfg.tokens`` tokens over ``stream`` (a
    :class:`saetools.corpus.CorpusStream` or :class:`saetools.corpus.Corpus`): the documents are
    spooled once to ``out/documents.parquet`` (kept while the run is unfinished, so a resumed run
    reads the same documents) and read buffer by buffer; returns the
    :class:`saetools.sae.train.TrainResult`."""
    import os

    from ..store.docs_table import DocColumn, spool
    from .stream import ActivationStream, StreamTrainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "documents.parquet"
    if not (resume and table.exists()):
        tmp = out / f".documents-{os.getpid()}.parquet"
        spool(stream, tmp)
        os.replace(tmp, table)
    texts = DocColumn(table)
    if progress:
        print(
            f"reader {reader.name} (layer {reader.layer}, width {reader.d_model}); "
            f"{len(texts)} documents; streaming {cfg.tokens:,} tokens",
            file=sys.stderr,
        )
    source = ActivationStream(reader, texts, cfg.buffer_tokens, progress=progress)
    trainer = StreamTrainer(cfg, source, out, reader_info=reader.describe(), progress=progress)
    result = trainer.train(resume=resume)
    table.unlink(missing_ok=True)
    return result


def fit_size(texts) -> dict:
    """Training settings sized to the data: about one latent per 20 tokens (~4 characters per
    token), between 1,024 and 8,192 in steps of 256; k 32, 8 epochs."""
    n_tokens = sum(len(t) for t in texts) // 4
    latents = int(min(8192, max(1024, n_tokens // 20)) // 256 * 256)
    return {"latents": latents, "k": 32, "epochs": 8.0, "batch_size": 2048}


def fit_sae_for(texts_a, texts_b, *, reader, progress: bool = True, **options) -> Path:
    """Train an SAE on A and B together (``diff --fit``), cached by content; returns its folder.

    Sized by :func:`fit_size`; ``options`` override :class:`TrainConfig` fields."""
    import hashlib
    import json

    from ..paths import saetools_home
    from .io import detect_format

    texts = list(texts_a) + list(texts_b)
    key = json.dumps([content_key(texts), reader.describe(), options], sort_keys=True, default=str)
    folder = saetools_home() / "fits" / hashlib.sha256(key.encode()).hexdigest()[:20]
    try:
        detect_format(folder)
        return folder
    except Exception:  # noqa: BLE001 - not trained yet
        pass
    cfg = TrainConfig(**{**fit_size(texts), **options})
    train_on_corpus(read_corpus(texts), folder, reader, cfg, progress=progress)
    return folder
