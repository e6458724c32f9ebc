"""Python API: the same operations as the CLI, taking and returning Python objects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .corpus import read_corpus
from .sae.train import TrainConfig, TrainResult

if TYPE_CHECKING:
    import pandas as pd


def train_sae(
    data: str | Path | Sequence[str],
    out: str | Path,
    *,
    reader=None,
    layer: int | None = None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
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

    from .sae.activations import harvest
    from .sae.train import Trainer

    cfg = TrainConfig(**options)
    corpus = read_corpus(data, field, id_field=id_field, role=role)
    reader = reader_for(reader, layer, None, device=cfg.device, progress=progress)
    if progress:
        import sys

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


DEFAULT_SAE_DIR = Path(__file__).parent / "models" / "smollm2-135m-l15-topk"
DEFAULT_EMBEDDING_SAE_DIR = Path(__file__).parent / "models" / "minilm-l6-doc-topk"


def is_embedding_reader(reader) -> bool:
    """True for the sentence-embedding reader, given by name or as an object."""
    from .readers.defaults import EMBEDDING_ALIASES

    if isinstance(reader, str):
        return reader.lower() in EMBEDDING_ALIASES or reader.startswith("sentence-transformers:")
    return getattr(reader, "kind", None) == "embedding"


def default_sae_path(reader=None) -> Path:
    """Folder of the SAE shipped for ``reader``: the SmolLM2 layer-15 SAE for the default
    reader, the document-embedding SAE for MiniLM."""
    from .errors import SaetoolsError

    folder = DEFAULT_EMBEDDING_SAE_DIR if is_embedding_reader(reader) else DEFAULT_SAE_DIR
    if not (folder / "cfg.json").exists():
        raise SaetoolsError(
            f"no default SAE for this reader is installed ({folder.name}); pass --sae DIR or "
            "use --fit"
        )
    return folder


def resolve_sae(sae=None, reader=None):
    """``(SAE, folder)`` for an SAE object, a folder, or None (the SAE shipped for ``reader``)."""
    from .sae.io import load_sae
    from .sae.models import SAE

    if isinstance(sae, SAE):
        return sae, None
    folder = default_sae_path(reader) if sae is None else Path(sae)
    return load_sae(folder), folder


def _content_key(data, field: str, id_field, role) -> str:
    import hashlib

    from .errors import InputError

    digest = hashlib.sha256(repr((field, id_field, role)).encode())
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise InputError("no such file", file=path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
            with open(file, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
    else:
        for text in data:
            digest.update(str(text).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def reader_for(reader, layer, fallback: dict | None, *, device=None, progress: bool = True):
    """A reader object: ``reader`` itself, or loaded by name, with the name and layer an SAE was
    trained on (``fallback``, its ``cfg.reader``) filling in what is not given."""
    from .readers import load_reader

    if reader is not None and not isinstance(reader, str):
        return reader
    fallback = fallback or {}
    return load_reader(
        reader or fallback.get("name"),
        layer if layer is not None else fallback.get("layer"),
        device=device,
        quiet=not progress,
    )


def is_store(path) -> bool:
    """True when ``path`` is a folder holding a saetools store."""
    return isinstance(path, str | Path) and (Path(path) / "manifest.json").exists()


def encode(
    data,
    out: str | Path | None = None,
    *,
    reader=None,
    layer: int | None = None,
    sae=None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    min_contribution: float | None = None,
    shard_docs: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str | None = "cpu",
):
    """Encode documents into a store and return it (:class:`saetools.store.Store`).

    ``data`` is a data file, a list of texts or a pandas Series. Without ``out`` the store goes to
    a cache under ``$SAETOOLS_HOME/stores`` keyed by (content, reader, SAE, pooling), so encoding
    the same data again is instant.
    """
    import hashlib
    import json

    import pandas as pd

    from .paths import saetools_home
    from .store import encode_corpus, open_store
    from .store.writer import DEFAULT_MIN_CONTRIBUTION, DEFAULT_SHARD_DOCS, sae_identity

    if isinstance(data, pd.Series):
        data = data.astype(str).tolist()
    model, sae_folder = resolve_sae(sae, reader)
    reader = reader_for(reader, layer, model.cfg.reader, device=device, progress=progress)
    min_contribution = DEFAULT_MIN_CONTRIBUTION if min_contribution is None else min_contribution
    if out is None:
        key = json.dumps(
            [
                _content_key(data, field, id_field, role),
                reader.describe(),
                sae_identity(model, None),  # weights and k (TopK SAEs may share weights)
                min_contribution,
            ],
            sort_keys=True,
        )
        out = saetools_home() / "stores" / hashlib.sha256(key.encode()).hexdigest()[:20]
        if is_store(out):
            from .store.manifest import read_manifest

            if read_manifest(Path(out)).get("complete"):
                return open_store(out)
    corpus = read_corpus(data, field, id_field=id_field, role=role)
    source = {"field": field, "id_field": id_field, "role": role}
    encode_corpus(
        corpus,
        reader,
        model,
        out,
        sae_path=sae_folder,
        source=source,
        shard_docs=shard_docs or DEFAULT_SHARD_DOCS,
        min_contribution=min_contribution,
        overwrite=overwrite,
        progress=progress,
    )
    return open_store(out)


def fit_sae_for(texts_a, texts_b, *, reader, progress: bool = True, **options):
    """Train an SAE on A and B together (``--fit``), cached by content; returns its folder.

    Sized to the data: about one latent per 20 tokens, between 1,024 and 8,192, k = 32.
    """
    import hashlib
    import json

    from .paths import saetools_home
    from .sae.io import detect_format

    texts = list(texts_a) + list(texts_b)
    key = json.dumps(
        [_content_key(texts, "text", None, None), reader.describe(), options],
        sort_keys=True,
        default=str,
    )
    folder = saetools_home() / "fits" / hashlib.sha256(key.encode()).hexdigest()[:20]
    try:
        detect_format(folder)
        return folder
    except Exception:  # noqa: BLE001 - not trained yet
        pass
    n_tokens = sum(len(t) for t in texts) // 4  # ~4 characters per token
    latents = int(min(8192, max(1024, n_tokens // 20)) // 256 * 256)
    settings = {"latents": latents, "k": 32, "epochs": 8.0, "batch_size": 2048, **options}
    train_sae(texts, folder, reader=reader, progress=progress, **settings)
    return folder


def _side(data, field, id_field, role):
    """Texts of one side of a diff (for --fit), from a store or raw data."""
    from .store import open_store

    if is_store(data):
        return open_store(data).docs["text"].tolist()
    return read_corpus(data, field, id_field=id_field, role=role, warn=False).texts


def diff(
    a,
    b,
    *,
    reader=None,
    layer: int | None = None,
    sae=None,
    fit: bool = False,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    test: str = "frequency",
    threshold: str | float = "relative",
    rho: float | None = None,
    alpha: float = 0.05,
    min_freq: float = 0.0,
    examples: int = 3,
    progress: bool = True,
    device: str | None = "cpu",
    fit_seed: int = 0,
):
    """Which latents differ between A and B; returns a ranked :class:`pandas.DataFrame`.

    ``a`` and ``b`` are stores, data files, lists of texts or Series. Raw data is encoded with the
    given (or default) reader and SAE into a cache. ``fit=True`` first trains an SAE on A and B
    together. See docs/diff.md for the statistics and the columns.
    """
    from .analyses.diff import diff_stores
    from .errors import SaetoolsError
    from .labels import load_labels
    from .store import open_store
    from .store.manifest import describe_difference, identity

    if fit and (is_store(a) or is_store(b)):
        raise SaetoolsError("--fit needs raw data files, not stores (they are already encoded)")
    if not (is_store(a) and is_store(b)):
        if reader is None or isinstance(reader, str):
            info = None if fit else resolve_sae(sae, reader)[0].cfg.reader
            reader = reader_for(reader, layer, info, device=device, progress=progress)
        if fit:
            sae = fit_sae_for(
                _side(a, field, id_field, role),
                _side(b, field, id_field, role),
                reader=reader,
                progress=progress,
                seed=fit_seed,
            )
    stores = [
        open_store(side)
        if is_store(side)
        else encode(
            side,
            reader=reader,
            sae=sae,
            field=field,
            id_field=id_field,
            role=role,
            progress=progress,
            device=device,
        )
        for side in (a, b)
    ]
    store_a, store_b = stores
    ida, idb = identity(store_a.manifest), identity(store_b.manifest)
    if ida != idb:
        raise SaetoolsError(
            f"A ({store_a.folder}) and B ({store_b.folder}) were encoded differently: "
            f"{describe_difference(ida, idb)}"
        )
    sae_path = store_a.manifest["sae"].get("path")
    labels = load_labels(sae_path)
    options = {"test": test, "threshold": threshold, "alpha": alpha, "min_freq": min_freq}
    if rho is not None:
        options["rho"] = rho
    frame = diff_stores(store_a, store_b, labels=labels, examples=examples, **options)
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
):
    """Plain-language hypotheses about a :func:`diff` result, each citing its latents; with
    ``verify``, the LLM checks each on that many sampled documents per side. Returns a
    DataFrame (``hypothesis``, ``latents``, ``freq_a``, ``freq_b``, ``verified_a``,
    ``verified_b``). docs/llm.md."""
    from .llm import LLMClient
    from .llm.hypotheses import hypotheses_for_diff
    from .store import open_store

    client = client or LLMClient()
    texts_a = texts_b = None
    if verify:
        texts_a = open_store(frame.attrs["store_a"]).docs["text"].tolist()
        texts_b = open_store(frame.attrs["store_b"]).docs["text"].tolist()
    return hypotheses_for_diff(
        frame,
        client,
        n=n,
        top=top,
        verify=verify,
        texts_a=texts_a,
        texts_b=texts_b,
        seed=seed,
        progress=progress,
    )


def store_for(
    data,
    *,
    reader=None,
    layer: int | None = None,
    sae=None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    progress: bool = True,
    device: str | None = "cpu",
):
    """The store of ``data``: opened if it is a store folder, else encoded into the cache."""
    from .store import open_store

    if is_store(data):
        return open_store(data)
    return encode(
        data,
        reader=reader,
        layer=layer,
        sae=sae,
        field=field,
        id_field=id_field,
        role=role,
        progress=progress,
        device=device,
    )


def labels_of_store(store) -> dict[int, str]:
    """The best labels of the SAE a store was encoded with (empty if it has none)."""
    from .labels import load_labels

    return load_labels(store.manifest["sae"].get("path"))


def label_index_of_store(store, *, required: bool, progress: bool = False):
    """The :class:`LabelIndex` of a store's SAE labels; None (or an error if ``required``)
    when the SAE has no labels."""
    from .errors import SaetoolsError
    from .labels.similarity import LabelIndex

    labels = labels_of_store(store)
    if not labels:
        if required:
            raise SaetoolsError(
                f"{store.folder}: the SAE of this store ({store.manifest['sae'].get('path')}) has "
                "no labels.jsonl; label it first (`saetools label`) or use an SAE with labels"
            )
        return None
    path = store.manifest["sae"].get("path")
    key = (str(path), hash(tuple(sorted(labels.items()))))
    if key not in _LABEL_INDEXES:
        if len(_LABEL_INDEXES) >= 4:
            _LABEL_INDEXES.pop(next(iter(_LABEL_INDEXES)))
        _LABEL_INDEXES[key] = LabelIndex(labels, progress=progress, shipped=path)
    return _LABEL_INDEXES[key]


_LABEL_INDEXES: dict = {}  # (SAE path, labels) -> LabelIndex, so repeated queries reuse it


def _column_by_id(data, column: str, id_field, role) -> dict[str, str]:
    """``id -> value`` of a metadata column of a data file (rows without a value are absent)."""
    from .errors import SaetoolsError

    if not isinstance(data, str | Path):
        raise SaetoolsError("--with-column needs a data file")
    corpus = read_corpus(data, column, id_field=id_field, role=role, warn=False)
    return {doc.id: doc.text for doc in corpus.documents}


def _aligned(store_x, store_y):
    """Views of two stores restricted to the document ids they share, in X's order."""
    import numpy as np

    from .errors import SaetoolsError

    ids_y = {str(v): r for r, v in enumerate(store_y.docs["id"])}
    rows_x, rows_y = [], []
    for r, v in enumerate(store_x.docs["id"]):
        if str(v) in ids_y:
            rows_x.append(r)
            rows_y.append(ids_y[str(v)])
    if not rows_x:
        raise SaetoolsError("the two fields share no documents (no id has text in both)")
    return store_x.select_rows(np.array(rows_x)), store_y.select_rows(np.array(rows_y))


def correlate(
    data,
    *,
    x_field: str | None = None,
    y_field: str | None = None,
    x_role: str | None = None,
    y_role: str | None = None,
    with_column: str | None = None,
    reader=None,
    layer: int | None = None,
    sae=None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    rho: float = 0.5,
    min_support: int | None = None,
    max_label_similarity: float | None = 0.7,
    passage_chars: int | None = 40,
    max_freq: float = 0.5,
    top: int = 50,
    examples: int = 2,
    progress: bool = True,
    device: str | None = "cpu",
):
    """NPMI audit of a dataset; returns ranked pairs as a :class:`pandas.DataFrame`.

    Three modes (docs/correlate.md): latent pairs within one text field (default); latents of
    one field against latents of another (``x_field``/``y_field`` or chat ``x_role``/``y_role``:
    "prompts about X co-occur with responses saying Y"); latents against the values of a
    metadata column (``with_column``).
    """
    import sys

    import pandas as pd

    from .analyses.correlate import column_indicators, correlate_matrices, pair_examples
    from .errors import SaetoolsError

    opts = {"reader": reader, "layer": layer, "sae": sae, "id_field": id_field}
    opts.update(progress=progress, device=device)
    cross = any(v is not None for v in (x_field, y_field, x_role, y_role))
    if cross and with_column:
        raise SaetoolsError("use either --x-field/--y-field (or roles) or --with-column, not both")
    if cross:
        if is_store(data):
            raise SaetoolsError("--x-field/--y-field need the data file, not a store")
        if (x_field or field) == (y_field or field) and x_role == y_role:
            raise SaetoolsError("--x-field/--y-field (or --x-role/--y-role) must differ")
        store_x = store_for(data, field=x_field or field, role=x_role or role, **opts)
        store_y = store_for(data, field=y_field or field, role=y_role or role, **opts)
        store_x, store_y = _aligned(store_x, store_y)
    else:
        store_x = store_y = store_for(data, field=field, role=role, **opts)
    labels = labels_of_store(store_x)
    index = label_index_of_store(store_x, required=False)
    if index is None and max_label_similarity is not None and not with_column and progress:
        print("warning: the SAE has no labels; the label-similarity filter is off", file=sys.stderr)
    common = {"rho": rho, "min_support": min_support, "top": top, "max_freq": max_freq}
    if with_column:
        source = data if not is_store(data) else store_x.manifest["source"].get("name")
        if source is None or not Path(source).exists():
            raise SaetoolsError(
                f"--with-column needs the data file; the store's source {source!r} is not there"
            )
        values = _column_by_id(source, with_column, id_field, role)
        ids = store_x.docs["id"].astype(str)
        keep = ids.isin(values.keys()).to_numpy()
        if not keep.any():
            raise SaetoolsError(f"{source}: no document has a value in column {with_column!r}")
        store_x = store_x.select_rows(keep.nonzero()[0])
        indicators, names = column_indicators(pd.Series([values[i] for i in ids[keep]]))
        frame = correlate_matrices(
            store_x.matrix, indicators, labels_x=labels, y_names=names, **common
        )
        frame.attrs.update(mode="column", column=with_column, n_docs=store_x.matrix.shape[0])
        return frame
    frame = correlate_matrices(
        store_x.matrix,
        None if store_y is store_x else store_y.matrix,
        labels_x=labels,
        labels_y=labels,
        label_index=index,
        max_label_similarity=max_label_similarity if index is not None else None,
        peak_starts=store_x.peak_starts if store_y is store_x else None,
        passage_chars=passage_chars,
        **common,
    )
    frame["examples"] = (
        pair_examples(store_x, store_y, frame, rho, examples)
        if examples
        else [[] for _ in range(len(frame))]
    )
    frame.attrs.update(
        mode="fields" if cross else "pairs",
        x=x_field or x_role or field,
        y=y_field or y_role or field,
        n_docs=store_x.matrix.shape[0],
    )
    return frame


def choose_latents(
    store,
    query: str | Sequence[str] | None = None,
    latents: Sequence[int] | None = None,
    *,
    top: int = 20,
    min_similarity: float | None = None,
    min_freq: float = 0.01,
    max_freq: float = 0.99,
    rho: float = 0.5,
    freq=None,
):
    """The latents an analysis is restricted to, as a DataFrame (``latent``, ``label``,
    ``similarity``, ``query``, ``freq``): given ids, or for each query the ``top`` latents whose
    labels are most similar to it among those active in ``[min_freq, max_freq]`` of the
    documents (latents that never fire here cannot separate anything). ``None`` when neither is
    given (all latents). ``freq``: the latents' activity frequencies, if already known."""
    import numpy as np
    import pandas as pd

    from .errors import SaetoolsError

    if query is None and latents is None:
        return None
    if freq is None:
        freq = activity_frequency(store.matrix, rho)
    labels = labels_of_store(store)
    if latents is not None:
        ids = np.asarray(list(latents), dtype=np.int64)
        bad = ids[(ids < 0) | (ids >= store.d_sae)]
        if len(bad):
            raise SaetoolsError(f"latent {int(bad[0])} is out of range (the SAE has {store.d_sae})")
        return pd.DataFrame(
            {
                "latent": ids,
                "label": [labels.get(int(j), "") for j in ids],
                "similarity": np.nan,
                "query": "",
                "freq": freq[ids],
            }
        )
    index = label_index_of_store(store, required=True)
    queries = [query] if isinstance(query, str) else list(query)
    parts = []
    for text in queries:
        match = index.match(text, top=None, threshold=min_similarity)
        usable = (freq[match["latent"]] >= min_freq) & (freq[match["latent"]] <= max_freq)
        match = match[usable].head(top)
        if match.empty:
            closest = ", ".join(repr(v) for v in index.match(text, top=5)["label"])
            raise SaetoolsError(
                f"no latent label matches {text!r} among the latents active in this data "
                f"(closest labels: {closest})"
            )
        parts.append(match.assign(query=text, freq=freq[match["latent"].to_numpy()]))
    chosen = pd.concat(parts).drop_duplicates("latent").reset_index(drop=True)
    return chosen


def activity_frequency(matrix, rho: float = 0.5):
    """Share of documents in which each latent is active (above rho times its scale)."""
    from .analyses.activity import active_share, binarize

    return active_share(binarize(matrix, rho))


class ClusterReport(NamedTuple):
    """Result of :func:`cluster`: ``clusters`` (one row per cluster: size, share, enriched
    latents, representative documents), ``documents`` (``id``, ``cluster``, in store order) and
    ``latents`` (the latents clustered on, with their labels and match scores; None for all)."""

    clusters: pd.DataFrame
    documents: pd.DataFrame
    latents: pd.DataFrame | None


def cluster(
    data,
    k: int = 5,
    *,
    query: str | Sequence[str] | None = None,
    latents: Sequence[int] | None = None,
    top_latents: int = 20,
    min_similarity: float | None = None,
    reader=None,
    layer: int | None = None,
    sae=None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    rho: float = 0.5,
    seed: int = 0,
    representatives: int = 3,
    llm=None,
    progress: bool = True,
    device: str | None = "cpu",
) -> ClusterReport:
    """Targeted spectral clustering of a dataset (docs/cluster.md).

    With ``query`` (one text or several), only the latents whose labels match it are used, so
    the clusters follow that property ("tone") rather than whatever dominates the data; with
    ``latents``, exactly those; with neither, all latents. With ``llm`` (an
    :class:`saetools.llm.LLMClient`) each cluster also gets a short ``name``.
    """
    import pandas as pd

    from .analyses.activity import active_share, binarize
    from .analyses.cluster import cluster_matrix, describe_clusters
    from .analyses.diff import snippet

    store = store_for(
        data,
        reader=reader,
        layer=layer,
        sae=sae,
        field=field,
        id_field=id_field,
        role=role,
        progress=progress,
        device=device,
    )
    active = binarize(store.matrix, rho)  # once, for the frequencies and the clustering
    chosen = choose_latents(
        store,
        query,
        latents,
        top=top_latents,
        min_similarity=min_similarity,
        rho=rho,
        freq=active_share(active),
    )
    result = cluster_matrix(
        store.matrix,
        k,
        latents=None if chosen is None else chosen["latent"].to_numpy(),
        rho=rho,
        seed=seed,
        active=active,
    )
    labels = labels_of_store(store)
    clusters = describe_clusters(result, labels, representatives=representatives)
    texts, ids = store.docs["text"].to_numpy(), store.docs["id"].astype(str).to_numpy()
    examples = []
    for row in clusters.itertuples():
        items = []
        top_latent = row.latents[0]["latent"] if row.latents else None
        for r in row.representatives:
            span = store.span(r, top_latent) if top_latent is not None else None
            text = snippet(texts[r], *span, width=60) if span else texts[r][:160]
            items.append({"id": ids[r], "text": " ".join(text.split())})
        examples.append(items)
    clusters["representatives"] = examples
    if llm is not None:
        from .llm.hypotheses import name_clusters

        clusters.insert(1, "name", name_clusters(clusters, llm, progress=progress))
    documents = pd.DataFrame({"id": ids, "cluster": result.labels})
    clusters.attrs.update(
        n_docs=len(ids), k=k, query=query, source=store.manifest["source"].get("name")
    )
    return ClusterReport(clusters, documents, chosen)


def reader_of_store(store, *, device: str | None = "cpu", progress: bool = False):
    """A reader configured exactly as the one that encoded ``store`` (from its manifest)."""
    from .readers import load_reader

    info = store.manifest["reader"]
    if info.get("kind") == "embedding":
        name = info["name"]
        return load_reader(
            "minilm" if name == "all-MiniLM-L6-v2" else f"sentence-transformers:{name}",
            device=device,
        )
    return load_reader(
        info["name"],
        info.get("layer"),
        device=device,
        dtype=info.get("dtype", "bfloat16"),
        window=info.get("window", 512),
        overlap=info.get("overlap", 64),
        truncate=info.get("truncate", False),
        outlier_ratio=info.get("outlier_ratio"),
        quiet=not progress,
    )


def pooled_vectors(texts: Sequence[str], store, *, device: str | None = "cpu"):
    """Max-pooled SAE vectors (CSR, one row per text) of new texts, made exactly as the
    documents of ``store`` were (same reader, SAE and pooling)."""
    from .sae.io import load_sae
    from .store.pooling import pooled_matrix

    sae_path = store.manifest["sae"].get("path")
    if not sae_path:
        from .errors import SaetoolsError

        raise SaetoolsError(f"{store.folder}: the store does not record where its SAE is")
    sae = load_sae(sae_path)
    reader = reader_of_store(store, device=device)
    minimum = store.manifest.get("pooling", {}).get("min_contribution", 0.0)
    return pooled_matrix(reader.iter_activations(list(texts)), sae, minimum)


_SEARCHERS: dict = {}
SEARCH_WEIGHT_POWER = 4


def searcher_of_store(store):
    """The :class:`saetools.analyses.search.Searcher` of a store (built once per process)."""
    from .analyses.search import Searcher

    key = (str(store.folder), len(store), store.manifest.get("nnz"))
    if key not in _SEARCHERS:
        _SEARCHERS.clear()
        _SEARCHERS[key] = Searcher(store.matrix)
    return _SEARCHERS[key]


def search(
    data,
    query: str | None = None,
    *,
    like: str | None = None,
    top: int = 10,
    top_latents: int = 10,
    min_similarity: float | None = None,
    rerank: int | None = None,
    llm=None,
    reader=None,
    layer: int | None = None,
    sae=None,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    progress: bool = True,
    device: str | None = "cpu",
):
    """Documents that have a property, best first, as a DataFrame (``rank``, ``id``, ``score``,
    the best-matching ``latent`` and ``label``, a ``snippet`` with its peak marked).

    ``query`` is matched against the latent labels; ``like`` uses the latents of an example text
    instead. ``rerank=N`` asks an LLM (``llm``: a :class:`saetools.llm.LLMClient`, or one made
    from the environment) to rescore the first N results against the query. docs/search.md.
    """
    import numpy as np

    from .analyses.search import results_frame
    from .errors import SaetoolsError

    if (query is None) == (like is None):
        raise SaetoolsError("give a query or --like TEXT (one of them)")
    if top < 1:
        raise SaetoolsError(f"--top must be at least 1, got {top}")
    store = store_for(
        data,
        reader=reader,
        layer=layer,
        sae=sae,
        field=field,
        id_field=id_field,
        role=role,
        progress=progress,
        device=device,
    )
    searcher = searcher_of_store(store)
    labels = labels_of_store(store)
    if like is not None:
        latents, weights = searcher.example_weights(
            pooled_vectors([like], store, device=device), top_latents
        )
        chosen = None
    else:
        chosen = choose_latents(
            store,
            query,
            top=top_latents,
            min_similarity=min_similarity,
            min_freq=1e-12,
            freq=searcher.active_freq,
        )
        latents = chosen["latent"].to_numpy()
        # similarity to the 4th power: the best-matching labels dominate, loosely related ones
        # only break ties (measured on planted apologies: AP 0.82-0.86 vs 0.70-0.80 linear)
        weights = np.clip(chosen["similarity"].to_numpy(), 0.0, None) ** SEARCH_WEIGHT_POWER
    depth = max(top, rerank or 0)
    rows, scores = searcher.top(latents, weights, depth)
    frame = results_frame(store, searcher, rows, scores, latents, weights, labels)
    if rerank:
        from .llm.rerank import rerank_frame

        frame = rerank_frame(frame, store, query or like, rerank, llm=llm, progress=progress)
    frame = frame.head(top).reset_index(drop=True)
    frame.attrs.update(
        query=query,
        like=like,
        latents=[
            {"latent": int(j), "label": labels.get(int(j), ""), "weight": float(w)}
            for j, w in zip(latents, weights, strict=True)
        ],
        n_docs=len(store),
    )
    return frame


def select_latents(store, spec: str | Sequence[int], rho: float = 0.5) -> list[int]:
    """Latent ids from ``top:N`` (the N latents active in the most documents), ``all``, a
    comma-separated list, or a sequence of ids."""
    import numpy as np

    from .analyses.activity import binarize
    from .errors import SaetoolsError

    if not isinstance(spec, str):
        ids = [int(j) for j in spec]
    elif spec == "all":
        ids = list(range(store.d_sae))
    elif spec.startswith("top:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise SaetoolsError(f"--latents {spec!r}: expected top:N with N a number") from None
        counts = np.diff(binarize(store.matrix, rho).tocsc().indptr)
        order = np.lexsort((np.arange(len(counts)), -counts))
        ids = [int(j) for j in order[:n] if counts[j] > 0]
    else:
        try:
            ids = [int(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            raise SaetoolsError(
                f"--latents {spec!r}: expected top:N, all, or comma-separated ids"
            ) from None
    bad = [j for j in ids if not 0 <= j < store.d_sae]
    if bad:
        raise SaetoolsError(f"latent {bad[0]} is out of range (the SAE has {store.d_sae})")
    return ids


def label_jobs_estimate(client, store, latents, candidates: int) -> tuple[int, int, int]:
    """Estimated uncached requests and tokens of labelling (labels + fidelity scoring)."""
    import numpy as np

    from .labels.llm import LABEL_MAX_TOKENS, LatentExamples, label_messages

    rng = np.random.default_rng(0)
    jobs = []
    for j in latents:
        ex = LatentExamples(store, int(j), rng)
        if ex.usable:
            jobs.extend(
                {
                    "messages": label_messages(ex),
                    "seed": c,
                    "temperature": 0.0 if c == 0 else 0.7,
                    "max_tokens": LABEL_MAX_TOKENS,
                }
                for c in range(candidates)
            )
    requests, prompt, completion = client.estimate(jobs)
    # each label is then scored on up to 20 held-out snippets, one short request each
    return 21 * requests, prompt + requests * 20 * 90, completion + requests * 20 * 4


def label(
    target,
    latents: str | Sequence[int] = "top:200",
    *,
    data=None,
    client=None,
    candidates: int = 1,
    field: str = "text",
    id_field: str | None = None,
    role: str | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str | None = "cpu",
):
    """LLM labels with fidelity scores for an SAE's latents; returns ``(rows, failures, path)``.

    ``target`` is a store, a data file (encoded with the default SAE) or an SAE folder (then
    ``data`` gives the documents to take examples from). Labels are merged into this machine's
    labels for the SAE (``$SAETOOLS_HOME/labels/<fingerprint>/labels.jsonl``), where every
    analysis finds them. docs/llm.md.
    """
    from .errors import SaetoolsError
    from .labels import write_user_labels
    from .labels.llm import label_latents
    from .llm import LLMClient
    from .sae.io import detect_format

    sae = None
    if isinstance(target, str | Path) and Path(target).is_dir() and not is_store(target):
        try:
            detect_format(target)
        except Exception:  # noqa: BLE001
            raise SaetoolsError(f"{target}: neither a store nor an SAE folder") from None
        if data is None:
            raise SaetoolsError(f"{target} is an SAE: pass --data FILE to take examples from")
        sae, target = target, data
    store = store_for(
        target, sae=sae, field=field, id_field=id_field, role=role, progress=progress, device=device
    )
    sae_path = store.manifest["sae"].get("path")
    if not sae_path:
        raise SaetoolsError(f"{store.folder}: the store does not record where its SAE is")
    client = client or LLMClient()
    ids = select_latents(store, latents)
    rows, failures = label_latents(
        store, ids, client, candidates=candidates, seed=seed, progress=progress
    )
    path = write_user_labels(sae_path, rows) if rows else None
    return rows, failures, path
