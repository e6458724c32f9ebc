"""Python API: the operations of the CLI, taking and returning Python objects.

Every verb takes its data, then options either as objects (``source=``: a
:class:`~saetools.options.Source`; ``options=``: the verb's options class) or as keywords naming
their fields (``reader="minilm"``, ``rho=0.3``); keywords override the objects. The work is done
by the layers below (store, labels, analyses); this module only wires them together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .options import (
    ClusterOptions,
    CorrelateOptions,
    DiffOptions,
    EncodeOptions,
    FamiliesOptions,
    LabelOptions,
    SearchOptions,
    Source,
    merged,
)

if TYPE_CHECKING:
    import pandas as pd

    from .analyses.cluster import ClusterReport
    from .sae.config import TrainConfig
    from .sae.train import TrainResult
    from .store import Store


def _bind(source, options, cls, kwargs: dict):
    """``(Source, options)`` from the given objects and keywords (unknown keywords: TypeError)."""
    source = merged(source, Source, kwargs)
    options = merged(options, cls, kwargs) if cls is not None else None
    if kwargs:
        raise TypeError(f"unexpected keyword(s): {', '.join(sorted(kwargs))}")
    return source, options


def train_sae(
    data: str | Path | Sequence[str],
    out: str | Path,
    *,
    config: TrainConfig | None = None,
    source: Source | None = None,
    resume: bool = False,
    keep_activations: bool = False,
    progress: bool = True,
    **kwargs,
) -> TrainResult:
    """Train an SAE on a reader's activations over ``data`` (a data file or a list of texts)
    and save it under ``out``. Keywords are :class:`~saetools.sae.config.TrainConfig` fields
    (``latents``, ``k``, ``architecture``, ``epochs``, ...) or :class:`Source` fields (the reader
    and the data's fields); the reader's device is the training device."""
    from .corpus import plain_chat, read_corpus, stream_corpus
    from .outputs import check_output_folder
    from .sae.config import TrainConfig
    from .sae.fit import train_on_corpus, train_streaming

    check_output_folder(out, "--out")
    cfg = merged(config, TrainConfig, kwargs)
    source, _ = _bind(source, None, None, kwargs)
    source = dataclasses.replace(source, device=cfg.device)
    opened: list = []

    def reader():
        """The reader, opened on first use: a corpus of plain texts is read (and any bad line
        reported) before the model loads; only whole conversations need it while reading."""
        if not opened:
            opened.append(source.open_reader(progress=progress))
        return opened[0]

    def render(messages):
        chat = getattr(reader(), "render_chat", None)
        return chat(messages) if chat is not None else plain_chat(messages)

    if cfg.tokens:
        stream = stream_corpus(data, source.field, **source.corpus_options, render=render)
        return train_streaming(stream, out, reader(), cfg, resume=resume, progress=progress)
    corpus = read_corpus(data, source.field, **source.corpus_options, render=render)
    return train_on_corpus(
        corpus,
        out,
        reader(),
        cfg,
        resume=resume,
        keep_activations=keep_activations,
        progress=progress,
    )


def encode(
    data,
    out: str | Path | None = None,
    *,
    source: Source | None = None,
    options: EncodeOptions | None = None,
    progress: bool = True,
    **kwargs,
) -> Store:
    """Encode documents into a store and return it (:class:`saetools.store.Store`).

    ``data`` is a data file, a list of texts or a pandas Series. Without ``out`` the store goes to
    a cache under ``$SAETOOLS_HOME/stores`` keyed by (content, reader, SAE, pooling), so encoding
    the same data again is instant. Keywords: :class:`Source` and :class:`EncodeOptions` fields.
    """
    from .store.cache import encode as encode_data

    source, options = _bind(source, options, EncodeOptions, kwargs)
    return encode_data(data, out, source, options, progress=progress)


def diff(
    a,
    b,
    *,
    source: Source | None = None,
    options: DiffOptions | None = None,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """Which properties differ between A and B; returns a ranked :class:`pandas.DataFrame`
    (one row per property, its latents grouped; ``by="latent"``: one row per latent).

    ``a`` and ``b`` are stores, data files, lists of texts or Series. Raw data is encoded with the
    given (or default) reader and SAE into a cache; ``fit=True`` first trains an SAE on A and B
    together. Keywords: :class:`Source` and :class:`DiffOptions` fields. docs/diff.md.
    """
    from .analyses.diff import diff_stores
    from .labels import labels_of_store
    from .store.cache import store_pair

    source, options = _bind(source, options, DiffOptions, kwargs)
    store_a, store_b = store_pair(
        a, b, source, fit=options.fit, seed=options.seed, progress=progress
    )
    frame = diff_stores(
        store_a,
        store_b,
        labels=labels_of_store(store_a),
        examples=options.examples,
        by=options.by,
        group_similarity=options.group_similarity,
        progress=progress,
        **options.test_options(),
    )
    frame.attrs.update(store_a=str(store_a.folder), store_b=str(store_b.folder))
    return frame


def hypotheses(
    frame,
    *,
    client=None,
    n: int = 3,
    top: int = 8,
    verify: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Plain-language hypotheses about a :func:`diff` result, each citing its latents; with
    ``verify``, the LLM checks each on that many sampled documents per side. Returns a
    DataFrame (``hypothesis``, ``latents``, ``freq_a``, ``freq_b``, ``verified_a``,
    ``verified_b``). docs/llm.md."""
    from .analyses.hypotheses import hypotheses_for_diff
    from .llm import LLMClient
    from .store import open_store
    from .store.docs_table import DocColumn

    texts = [None, None]
    if verify:  # read by row group: only the sampled documents' groups
        texts = [
            DocColumn(open_store(frame.attrs[k]).folder / "docs.parquet")
            for k in ("store_a", "store_b")
        ]
    return hypotheses_for_diff(
        frame,
        client or LLMClient(),
        n=n,
        top=top,
        verify=verify,
        texts_a=texts[0],
        texts_b=texts[1],
        seed=seed,
        progress=progress,
    )


def correlate(
    data,
    *,
    source: Source | None = None,
    options: CorrelateOptions | None = None,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """NPMI audit of a dataset; returns ranked pairs as a :class:`pandas.DataFrame`.

    Three modes (docs/correlate.md): latent pairs within one text field (default); latents of
    one field against latents of another (``x_field``/``y_field`` or chat ``x_role``/``y_role``:
    "prompts about X co-occur with responses saying Y"); latents against the values of a
    metadata column (``with_column``). Keywords: :class:`Source`, :class:`CorrelateOptions`.
    """
    from .analyses.correlate import correlate_data

    source, options = _bind(source, options, CorrelateOptions, kwargs)
    return correlate_data(data, source, options, progress=progress)


def families(
    data,
    *,
    source: Source | None = None,
    options: FamiliesOptions | None = None,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """Feature families of a dataset: parent -> child latents (a child fires mostly where its
    parent fires; the parent is denser), with labels; a :class:`pandas.DataFrame`
    (docs/families.md). Keywords: :class:`Source`, :class:`FamiliesOptions`."""
    from .analyses.families import families_store
    from .store.cache import store_for

    source, options = _bind(source, options, FamiliesOptions, kwargs)
    return families_store(store_for(data, source, progress=progress), options)


def merge(stores, out: str | Path, *, overwrite: bool = False):
    """Join stores made with the same reader, SAE and pooling into one store at ``out`` (their
    documents in the given order) and open it; refuses stores encoded differently
    (docs/scale.md)."""
    from .store.cache import as_store
    from .store.merge import merge_stores
    from .store.reader import open_store

    return open_store(merge_stores([as_store(s) for s in stores], out, overwrite=overwrite))


def feature(
    data,
    latent: int,
    *,
    top: int = 10,
    source: Source | None = None,
    progress: bool = True,
    **kwargs,
):
    """One latent's page in a dataset: label and label scores, density, top documents with the
    firing span, co-occurring latents, activation histogram; a
    :class:`saetools.analyses.feature.FeaturePage` (docs/browse.md). Keywords: :class:`Source`."""
    from .analyses.feature import feature_page
    from .store.cache import store_for

    source, _ = _bind(source, None, None, kwargs)
    return feature_page(store_for(data, source, progress=progress), latent, top=top)


def cluster(
    data,
    k: int | None = None,
    *,
    source: Source | None = None,
    options: ClusterOptions | None = None,
    llm=None,
    progress: bool = True,
    **kwargs,
) -> ClusterReport:
    """Targeted spectral clustering of a dataset (docs/cluster.md).

    With ``query`` (one text or several), only the latents whose labels match it are used, so
    the clusters follow that property ("tone") rather than whatever dominates the data; with
    ``latents``, exactly those; with neither, all latents. With ``llm`` (an
    :class:`saetools.llm.LLMClient`) each cluster also gets a short ``name``. Keywords:
    :class:`Source` and :class:`ClusterOptions` fields.
    """
    from .analyses.cluster import cluster_store
    from .store.cache import store_for

    if k is not None:
        kwargs["k"] = k
    source, options = _bind(source, options, ClusterOptions, kwargs)
    store = store_for(data, source, progress=progress)
    return cluster_store(store, options, llm=llm, progress=progress)


def search(
    data,
    query: str | None = None,
    *,
    source: Source | None = None,
    options: SearchOptions | None = None,
    llm=None,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """Documents that have a property, best first, as a DataFrame (``rank``, ``id``, ``score``,
    the best-matching ``latent`` and ``label``, a ``snippet`` with its peak marked).

    ``query`` is matched against the latent labels; ``like`` uses the latents of an example text
    instead. ``rerank=N`` asks an LLM (``llm``: a :class:`saetools.llm.LLMClient`, or one made
    from the environment) to rescore the first N results against the query. Keywords:
    :class:`Source` and :class:`SearchOptions` fields. docs/search.md.
    """
    from .analyses.search import check_query, search_store
    from .store.cache import store_for

    source, options = _bind(source, options, SearchOptions, kwargs)
    check_query(query, options.like)  # before any encoding
    store = store_for(data, source, progress=progress)
    return search_store(store, query, options, llm=llm, device=source.device, progress=progress)


def label(
    target,
    latents: str | Sequence[int] | None = None,
    *,
    data=None,
    client=None,
    source: Source | None = None,
    options: LabelOptions | None = None,
    progress: bool = True,
    **kwargs,
):
    """LLM labels with fidelity scores for an SAE's latents; returns ``(rows, failures, path)``.

    ``target`` is a store, a data file (encoded with the default SAE) or an SAE folder (then
    ``data`` gives the documents to take examples from). Labels are merged into this machine's
    labels for the SAE (``$SAETOOLS_HOME/labels/<fingerprint>/labels.jsonl``), where every
    analysis finds them. Keywords: :class:`Source` and :class:`LabelOptions` fields. docs/llm.md.
    """
    from .labels import write_user_labels
    from .labels.llm import label_latents, labelling_store, select_latents
    from .llm import LLMClient

    if latents is not None:
        kwargs["latents"] = latents
    source, options = _bind(source, options, LabelOptions, kwargs)
    store = labelling_store(target, data, source, progress=progress)
    client = client or LLMClient()
    rows, failures = label_latents(
        store,
        select_latents(store, options.latents),
        client,
        candidates=options.candidates,
        seed=options.seed,
        progress=progress,
    )
    path = (
        write_user_labels(store.sae_path, rows, fingerprint=store.sae_fingerprint) if rows else None
    )
    return rows, failures, path


def label_contexts(
    target, *, data=None, source: Source | None = None, progress: bool = True, **kwargs
) -> Path:
    """Compute the context vectors of an SAE's latents and file them on this machine; returns
    the file written.

    ``target`` and ``data`` are as for :func:`label`. A latent's context vector is the mean
    sentence embedding of the text around its strongest firings in those documents; query
    matching (search, targeted cluster) mixes it with the label's embedding, so a query can find
    a latent by what surrounds its firings (docs/search.md). Keywords: :class:`Source` fields.
    """
    from .labels.contexts import write_store_contexts
    from .labels.llm import labelling_store

    source, _ = _bind(source, None, None, kwargs)
    store = labelling_store(target, data, source, progress=progress)
    return write_store_contexts(store, progress=progress)
