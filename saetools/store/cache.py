"""Stores for data: open a store folder, or encode data into a content-keyed cache.

The cache lives under ``$SAETOOLS_HOME/stores``, keyed by (content, reader, SAE, pooling), so
analysing the same data again does not read it again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..corpus import content_key, read_corpus
from ..errors import SaetoolsError
from ..options import EncodeOptions, Source
from .manifest import read_manifest
from .reader import Store, open_store
from .writer import DEFAULT_MIN_CONTRIBUTION, DEFAULT_SHARD_DOCS, encode_corpus, sae_identity


def is_store(path) -> bool:
    """True when ``path`` is a folder holding a saetools store."""
    return isinstance(path, str | Path) and (Path(path) / "manifest.json").exists()


def as_texts(data):
    """A pandas Series becomes a list of strings; anything else is returned as is."""
    import pandas as pd

    return data.astype(str).tolist() if isinstance(data, pd.Series) else data


def encode(
    data,
    out: str | Path | None = None,
    source: Source | None = None,
    options: EncodeOptions | None = None,
    *,
    reader=None,
    progress: bool = True,
) -> Store:
    """Encode ``data`` (a data file, a list of texts or a Series) into a store and open it.

    Without ``out`` the store goes to the cache (and is reused when complete). ``reader``: an
    already loaded reader (else ``source`` names it).
    """
    source, options = source or Source(), options or EncodeOptions()
    data = as_texts(data)
    model, sae_folder = source.open_sae()
    reader = reader or source.open_reader(model.cfg.reader, progress=progress)
    minimum = options.min_contribution
    minimum = DEFAULT_MIN_CONTRIBUTION if minimum is None else minimum
    if out is None:
        key = json.dumps(
            [
                content_key(data, source.field, source.id_field, source.role),
                reader.describe(),
                sae_identity(model, None),  # weights and k (TopK SAEs may share weights)
                minimum,
            ],
            sort_keys=True,
        )
        from ..paths import saetools_home

        out = saetools_home() / "stores" / hashlib.sha256(key.encode()).hexdigest()[:20]
        if is_store(out) and read_manifest(Path(out)).get("complete"):
            return open_store(out)
    corpus = read_corpus(data, source.field, **source.corpus_options)
    encode_corpus(
        corpus,
        reader,
        model,
        out,
        sae_path=sae_folder,
        source={"field": source.field, **source.corpus_options},
        shard_docs=options.shard_docs or DEFAULT_SHARD_DOCS,
        min_contribution=minimum,
        overwrite=options.overwrite,
        progress=progress,
    )
    return open_store(out)


def store_for(data, source: Source | None = None, *, reader=None, progress: bool = True) -> Store:
    """The store of ``data``: opened if it is a store folder, else encoded into the cache."""
    if is_store(data):
        return open_store(data)
    return encode(data, source=source, reader=reader, progress=progress)


def texts_of(data, source: Source) -> list[str]:
    """The documents' texts, from a store or raw data."""
    if is_store(data):
        return open_store(data).docs["text"].tolist()
    return read_corpus(data, source.field, **source.corpus_options, warn=False).texts


def store_pair(a, b, source: Source | None = None, *, fit=False, seed=0, progress=True):
    """The stores of the two sides of a diff, checked comparable. Raw data is encoded with one
    reader (loaded once); ``fit`` first trains an SAE on A and B together (raw data only)."""
    source = source or Source()
    if fit and (is_store(a) or is_store(b)):
        raise SaetoolsError("--fit needs raw data files, not stores (they are already encoded)")
    reader = None
    if not (is_store(a) and is_store(b)):
        fallback = None if fit else source.open_sae()[0].cfg.reader
        reader = source.open_reader(fallback, progress=progress)
        if fit:
            from dataclasses import replace

            from ..sae.fit import fit_sae_for

            folder = fit_sae_for(
                texts_of(a, source),
                texts_of(b, source),
                reader=reader,
                progress=progress,
                seed=seed,
            )
            source = replace(source, sae=folder)
    store_a, store_b = (
        store_for(side, source, reader=reader, progress=progress) for side in (a, b)
    )
    store_a.check_comparable(store_b)
    return store_a, store_b
