"""Stores for data: open a store folder, or encode data into a content-keyed cache.

The cache lives under ``$SAETOOLS_HOME/stores``, keyed by (content, reader, SAE, pooling), so
analysing the same data again does not read it again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..corpus import check_input, content_key, read_corpus, stream_corpus
from ..errors import SaetoolsError
from ..options import EncodeOptions, Source
from ..outputs import check_output_folder
from ..sae.hub import parse_reference
from .manifest import read_manifest
from .reader import Store, open_store
from .writer import DEFAULT_MIN_CONTRIBUTION, DEFAULT_SHARD_DOCS, encode_corpus, sae_identity


def is_store(path) -> bool:
    """True when ``path`` is an open :class:`Store` or a folder holding a saetools store."""
    if isinstance(path, Store):
        return True
    return isinstance(path, str | Path) and (Path(path) / "manifest.json").exists()


def as_store(data) -> Store:
    """An open :class:`Store` as is; a store folder opened."""
    return data if isinstance(data, Store) else open_store(data)


def as_texts(data, field: str = "text"):
    """A pandas Series becomes a list of strings, a DataFrame the strings of its ``field``
    column; anything else is returned as is."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if field not in data.columns:
            columns = ", ".join(map(str, data.columns))
            raise SaetoolsError(
                f"the DataFrame has no column {field!r} (columns: {columns}); name the text "
                "column with field="
            )
        data = data[field]
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
    """Encode ``data`` (a data file or folder of shards, a list of texts, a pandas Series or
    DataFrame, a ``datasets.Dataset``) into a store and open it; chat conversations are
    rendered with the reader's chat template.

    Without ``out`` the store goes to the cache (and is reused when complete). ``reader``: an
    already loaded reader (else ``source`` names it).
    """
    source, options = source or Source(), options or EncodeOptions()
    check_input(data)
    if out is not None:
        check_output_folder(out, "--out")
    data = as_texts(data, source.field)
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
            return _as_given(open_store(out), data, sae_folder)
    render = getattr(reader, "render_chat", None)
    corpus = stream_corpus(data, source.field, **source.corpus_options, render=render)
    job = dict(
        sae_path=sae_folder,
        sae_ref=parse_reference(source.sae),
        source={"field": source.field, **source.corpus_options},
        shard_docs=options.shard_docs or DEFAULT_SHARD_DOCS,
        min_contribution=minimum,
        overwrite=options.overwrite,
        progress=progress,
    )
    if options.engine == "ray":
        job["ray"] = {"address": options.ray_address, "workers": options.workers}
    encode_corpus(corpus, reader, model, out, **job)
    return _as_given(open_store(out), data, sae_folder)


def _as_given(store: Store, data, sae_folder) -> Store:
    """The store, reporting the data file and the SAE folder the user named."""
    if isinstance(data, str | Path):
        store.given_source = str(data)
    if sae_folder is not None:
        store.given_sae = Path(sae_folder).resolve()
    return store


def store_for(
    data,
    source: Source | None = None,
    *,
    reader=None,
    options: EncodeOptions | None = None,
    progress: bool = True,
) -> Store:
    """The store of ``data``: opened if it is a store folder, else encoded into the cache."""
    if is_store(data):
        return as_store(data)
    return encode(data, source=source, options=options, reader=reader, progress=progress)


def texts_of(data, source: Source) -> list[str]:
    """The documents' texts, from a store or raw data."""
    if is_store(data):
        return as_store(data).docs["text"].tolist()
    return read_corpus(data, source.field, **source.corpus_options, warn=False).texts


def store_pair(a, b, source: Source | None = None, *, fit=False, seed=0, progress=True):
    """The stores of the two sides of a diff, checked comparable. Raw data is encoded with one
    reader (loaded once): the reader, SAE and pooling of the other side when that side is a
    store, else ``source``'s. ``fit`` first trains an SAE on A and B together (raw data only)."""
    from dataclasses import replace

    source = source or Source()
    check_input(a)
    check_input(b)
    if fit and (is_store(a) or is_store(b)):
        raise SaetoolsError("--fit needs raw data files, not stores (they are already encoded)")
    if is_store(a) and is_store(b):
        store_a, store_b = as_store(a), as_store(b)
        store_a.check_comparable(store_b)
        return store_a, store_b
    reader, options = None, None
    given = [as_store(side) for side in (a, b) if is_store(side)]
    if given:
        source, reader, options = _like_store(given[0], source, progress)
    else:
        fallback = None if fit else source.open_sae()[0].cfg.reader
        reader = source.open_reader(fallback, progress=progress)
    if fit:
        from ..sae.fit import fit_sae_for

        folder = fit_sae_for(
            texts_of(a, source), texts_of(b, source), reader=reader, progress=progress, seed=seed
        )
        source = replace(source, sae=folder)
    store_a, store_b = (
        store_for(side, source, reader=reader, options=options, progress=progress)
        for side in (a, b)
    )
    store_a.check_comparable(store_b)
    return store_a, store_b


def _like_store(store: Store, source: Source, progress: bool):
    """``(source, reader, options)`` that encode new data as ``store`` was encoded: its SAE
    (an SAE named in ``source`` must be the same one), its reader unless ``source`` names one,
    and its pooling."""
    from dataclasses import replace

    if store.sae_path is None:
        raise SaetoolsError(
            f"{store.folder}: the store does not record where its SAE is; encode both sides"
        )
    if source.sae is not None:
        from ..sae.io import folder_fingerprint

        if folder_fingerprint(source.sae) != store.sae_fingerprint:  # hub references fetched
            raise SaetoolsError(
                f"{source.sae}: not the SAE {store.folder} was encoded with ({store.sae_path}); "
                "leave out --sae to encode the other side with the store's SAE"
            )
    source = replace(source, sae=source.sae or store.sae_path)
    if source.reader is None and source.layer is None:
        reader = store.open_reader(device=source.device, progress=progress)
    else:
        reader = source.open_reader(store.load_sae().cfg.reader, progress=progress)
    return source, reader, EncodeOptions(min_contribution=store.min_contribution)
