"""Encode documents into a store: reader -> SAE -> max-pool -> CSR shards, resumably.

Order of writes: ``docs.parquet`` first, then one shard at a time (temporary name, then rename),
each followed by a manifest update listing it; the manifest is marked complete only after
``examples.parquet``. A killed run therefore leaves a manifest whose shard list covers exactly
the shards on disk, and a rerun continues after the last one.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from .. import __version__
from ..corpus import Corpus, CorpusStream
from ..errors import SaetoolsError
from ..outputs import default_file_mode
from ..readers.base import iter_parts
from ..sae.check import ReconstructionCheck
from .docs_table import DocColumn, SpooledDocs, spool
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST, identity, read_manifest, write_json_atomic
from .pooling import max_pool, merge_pooled
from .reader import concat_or_empty

DEFAULT_SHARD_DOCS = 2048
DEFAULT_MIN_CONTRIBUTION = 0.0


def sae_identity(sae, sae_path: str | Path | None, ref=None, store=None) -> dict:
    """Describe an SAE for the manifest; the fingerprint hashes its weights. Where it is, so a
    store copied elsewhere finds it: ``path`` (absolute), ``relative`` (to the store folder
    ``store``) and ``ref`` (the hub reference it came from)."""
    from ..sae.io import sae_fingerprint

    identity = {
        "path": None if sae_path is None else str(Path(sae_path).resolve()),
        "fingerprint": sae_fingerprint(sae),
        "architecture": sae.cfg.architecture,
        "d_in": sae.cfg.d_in,
        "d_sae": sae.cfg.d_sae,
        "k": sae.cfg.k,
    }
    if sae_path is not None and store is not None:
        identity["relative"] = os.path.relpath(Path(sae_path).resolve(), Path(store).resolve())
    if ref is not None:
        identity["ref"] = str(ref)
    return identity


def index_dtype(d_sae: int) -> type:
    """The smallest integer type that holds every latent id (uint16 up to 65,536 latents)."""
    return np.uint16 if d_sae <= 1 << 16 else np.int32


def _write_shard(path: Path, pooled: list, dtype: type, d_sae: int) -> int:
    counts = np.array([len(p.indices) for p in pooled], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = concat_or_empty([p.indices for p in pooled], np.int32, (0,))
    values = concat_or_empty([p.values for p in pooled], np.float32, (0,))
    spans = concat_or_empty([p.spans for p in pooled], np.int32, (0, 2)).reshape(-1, 2)
    tensors = {
        "indptr": indptr,
        "indices": indices.astype(index_dtype(d_sae)),
        "values": values.astype(dtype),
        "spans": np.ascontiguousarray(spans),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, default_file_mode())  # safetensors writes 0600; a store is shared like others
    os.replace(tmp, path)
    return int(indptr[-1])


def holding_store_lock(encode):
    """Run ``encode(corpus, reader, sae, out, ...)`` while holding the lock of the store at
    ``out`` (see :func:`store_lock`), after checking that the SAE fits the reader."""

    @functools.wraps(encode)
    def locked(corpus: Corpus | CorpusStream, reader, sae, out: str | Path, **options) -> Path:
        from ..sae.io import check_compatible

        check_compatible(sae, reader, options.get("sae_path"))
        with store_lock(Path(out)):
            return encode(corpus, reader, sae, out, **options)

    return locked


@contextmanager
def store_lock(folder: Path):
    """Hold an exclusive lock on the store at ``folder`` (a file beside it) while writing; a
    second encode into the same folder says so and waits, then finds the work done."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    path = folder.parent / f".{folder.name}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting: another encode is writing {folder}", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@holding_store_lock
def encode_corpus(
    corpus: Corpus | CorpusStream,
    reader,
    sae,
    out: str | Path,
    *,
    sae_path: str | Path | None = None,
    sae_ref: str | None = None,
    source: dict | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    min_contribution: float = DEFAULT_MIN_CONTRIBUTION,
    value_dtype: str = "float16",
    overwrite: bool = False,
    progress: bool = False,
    ray: dict | None = None,
) -> Path:
    """Encode ``corpus`` into a store at ``out`` (resuming an interrupted run of the same job).

    Returns the store folder. A store of other documents, reader, SAE or pooling at ``out`` is an
    error unless ``overwrite``. Concurrent encodes into one folder take turns (a lock file).
    ``ray``: encode the shards on Ray instead of here (``address``, ``workers``;
    :mod:`saetools.store.distributed`).
    """
    from tqdm.auto import tqdm

    folder = Path(out)
    dtype = {"float16": np.float16, "float32": np.float32}[value_dtype]
    manifest = prepare_store(
        corpus,
        reader,
        sae,
        folder,
        sae_path=sae_path,
        sae_ref=sae_ref,
        source=source,
        min_contribution=min_contribution,
        value_dtype=value_dtype,
        overwrite=overwrite,
    )
    if manifest is None:
        return folder
    if ray is not None:
        from .distributed import encode_shards_on_ray

        cut = encode_shards_on_ray(
            manifest,
            folder,
            sae,
            sae_path=sae_path,
            shard_docs=shard_docs,
            min_contribution=min_contribution,
            value_dtype=value_dtype,
            progress=progress,
            **ray,
        )
        finish_store(folder, manifest, cut, reader)
        return folder

    texts = DocColumn(folder / "docs.parquet")
    start = manifest["shards"][-1]["rows"][1] if manifest["shards"] else 0
    # progress in tokens, so that it moves within a long document
    bar = tqdm(desc="encoding", unit="tok", unit_scale=True, disable=not progress)
    bar.set_postfix_str(f"doc {start:,}/{len(texts):,}")
    cut_before = getattr(reader, "cut_docs", 0)
    check = None if "sae_check" in manifest else ReconstructionCheck(sae)
    pooled, lo = [], start
    windows = _pooled_in_windows(reader, sae, texts, start, min_contribution, lambda: check)
    for row, doc, tokens in windows:
        bar.update(tokens)
        if check is not None and (check.done or row == len(texts) - 1):
            _record_check(manifest, check.finish(), reader, sae, bar)
            check = None
        if doc is None:
            continue
        pooled.append(doc)
        bar.set_postfix_str(f"doc {row + 1:,}/{len(texts):,}", refresh=False)
        if len(pooled) == shard_docs or row == len(texts) - 1:
            name = f"acts/shard-{len(manifest['shards']):05d}.safetensors"
            nnz = _write_shard(folder / name, pooled, dtype, sae.cfg.d_sae)
            manifest["shards"].append({"file": name, "rows": [lo, row + 1], "nnz": nnz})
            manifest["nnz"] += nnz
            write_json_atomic(folder / MANIFEST, manifest)
            pooled, lo = [], row + 1
    bar.set_postfix_str(f"doc {len(texts):,}/{len(texts):,}")
    bar.close()
    finish_store(folder, manifest, getattr(reader, "cut_docs", 0) - cut_before, reader)
    return folder


ENCODE_WINDOW_DOCS = 8192
"""Documents whose texts are read from ``docs.parquet`` at a time while encoding."""


def read_align(reader) -> int:
    """Documents a reproducible read of ``reader`` starts on: its ``read_align`` (an HF reader:
    1 on a CPU), else the documents it batches together (``chunk_docs``), else 1."""
    return max(int(getattr(reader, "read_align", getattr(reader, "chunk_docs", 1))), 1)


def _pooled_in_windows(reader, sae, texts, start: int, min_contribution: float, current_check):
    """:func:`pooled_rows` of ``texts[start:]``, read a window of documents at a time; windows
    start on the reader's chunk boundaries, so every value equals one long read.
    ``current_check()`` is the reconstruction check still collecting (or None)."""
    align = read_align(reader)
    window = max(align, ENCODE_WINDOW_DOCS // align * align)
    lo = start
    while lo < len(texts):
        hi = min(len(texts), (lo // window + 1) * window)
        yield from pooled_rows(reader, sae, texts, lo, hi, min_contribution, current_check())
        lo = hi


def finish_store(folder: Path, manifest: dict, cut: int, reader=None) -> None:
    """Note the documents cut at ``--max-tokens-per-doc``, write ``examples.parquet`` and mark
    the manifest complete (the last writes of an encode)."""
    if cut:
        manifest["cut_docs"] = manifest.get("cut_docs", 0) + cut
        limit = getattr(reader, "max_tokens", None) or manifest["reader"].get("max_tokens")
        print(
            f"note: {cut:,} document(s) cut at {limit:,} tokens "
            "(--max-tokens-per-doc); the rest of each was not read",
            file=sys.stderr,
        )
    from .reader import Store, write_top_examples

    write_top_examples(Store(folder, require_complete=False))
    manifest["complete"] = True
    write_json_atomic(folder / MANIFEST, manifest)


def prepare_store(
    corpus,
    reader,
    sae,
    folder: Path,
    **job,
) -> dict | None:
    """The manifest to continue from: a new store (``docs.parquet`` and the manifest written),
    or the same job's unfinished store with its damaged shards re-encoded. None when that store
    is already complete and intact. Another job's store at ``folder`` is an error unless
    ``overwrite``. ``corpus`` (a :class:`~saetools.corpus.Corpus` or a
    :class:`~saetools.corpus.CorpusStream`) is first written to a document table beside
    ``folder``, a row group at a time, which then becomes the store's ``docs.parquet``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    docs = spool(corpus, folder.parent / f".{folder.name}.docs-{os.getpid()}.parquet")
    try:
        return _prepare(docs, reader, sae, folder, **job)
    finally:
        docs.path.unlink(missing_ok=True)


def _prepare(
    docs: SpooledDocs,
    reader,
    sae,
    folder: Path,
    *,
    sae_path,
    sae_ref,
    source,
    min_contribution: float,
    value_dtype: str,
    overwrite: bool,
) -> dict | None:
    dtype = {"float16": np.float16, "float32": np.float32}[value_dtype]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "saetools_version": __version__,
        "reader": reader.describe(),
        "sae": sae_identity(sae, sae_path, sae_ref, folder),
        "pooling": {"method": "max", "min_contribution": float(min_contribution)},
        "value_dtype": value_dtype,
        "source": {**(source or {}), "name": docs.source, "docs_hash": docs.docs_hash},
        "n_docs": docs.n_docs,
        "skipped_empty": docs.skipped_empty,
        "nnz": 0,
        "shards": [],
        "complete": False,
    }
    repaired = False
    if (folder / MANIFEST).exists():
        old = _readable_manifest(folder, overwrite)
        same = old is not None and (
            identity(old) == identity(manifest)
            and old["source"]["docs_hash"] == (manifest["source"]["docs_hash"])
        )
        if same:
            manifest = old
            repaired = _repair(folder, manifest, docs, reader, sae, min_contribution, dtype)
            if old.get("complete") and not repaired and _examples_readable(folder):
                return None
        elif overwrite:
            shutil.rmtree(folder)
        else:
            raise SaetoolsError(
                f"{folder}: holds a store of other documents, reader or SAE; "
                "choose another --out or pass --overwrite"
            )
    elif folder.exists() and any(folder.iterdir()) and not overwrite:
        raise SaetoolsError(f"{folder}: exists and is not a saetools store; choose another --out")
    (folder / "acts").mkdir(parents=True, exist_ok=True)
    if not manifest["shards"]:
        os.replace(docs.path, folder / "docs.parquet")
        write_json_atomic(folder / MANIFEST, manifest)

    return manifest


def encode_shard(
    path: Path, reader, sae, texts, lo: int, hi: int, min_contribution: float, dtype, check=None
) -> int:
    """Encode the documents ``texts[lo:hi]`` and write them as one shard at ``path``; returns
    its number of entries (``check``: see :func:`pooled_rows`)."""
    pooled = [
        doc
        for _, doc, _ in pooled_rows(reader, sae, texts, lo, hi, min_contribution, check)
        if doc is not None
    ]
    return _write_shard(path, pooled, dtype, sae.cfg.d_sae)


def pooled_rows(reader, sae, texts, lo: int, hi: int, min_contribution: float, check=None):
    """Yield ``(row, pooled, tokens)`` for the documents ``texts[lo:hi]``: ``pooled`` is a
    document's :class:`~saetools.store.pooling.PooledDocument` (None for a part that is not its
    last), ``tokens`` how many tokens the part had. The SAE runs on the reader's device; a
    :class:`~saetools.sae.check.ReconstructionCheck` given as ``check`` sees the first vectors.

    Where the reader batches documents together (an accelerator: chunks of ``chunk_docs``
    counted from document 0), reading covers whole chunks (from the one that holds ``lo`` to
    the one that holds ``hi - 1``): a batch's composition, and so every value to the last bit,
    never depends on the shard size, on where a run was interrupted or on which shard is being
    encoded or repaired. Ranges on chunk boundaries read nothing twice; on a CPU, where each
    window is read alone (``read_align`` 1), only ``lo:hi`` is read.
    """
    from .pooling import decoder_norms, encode_part, sae_for_reader

    align = read_align(reader)
    read_from = lo - lo % align
    read_to = min(len(texts), -(-hi // align) * align) if hi > lo else hi
    sae = sae_for_reader(sae, reader)
    if check is not None:
        check.sae = sae
    norms = decoder_norms(sae)
    current = None
    with torch.inference_mode():
        for doc, item, last in iter_parts(reader, texts[read_from:read_to]):
            row = read_from + doc
            if row < lo:
                continue
            if row >= hi:
                break
            codes, token_norms, x = encode_part(sae, item.acts)
            if check is not None and not check.done:
                check.add(x)
            part = max_pool(
                codes, item.offsets, sae.cfg.d_sae, token_norms, norms, min_contribution
            )
            current = part if current is None else merge_pooled(current, part)
            if last:
                yield row, current, x.shape[0]
                current = None
            else:
                yield row, None, x.shape[0]


def _record_check(manifest: dict, result: dict | None, reader, sae, bar) -> None:
    """Put the first-batch FVU into the manifest (written with the next shard) and warn when
    it is poor."""
    from ..sae.check import warn_if_poor

    if result is None:
        return
    manifest["sae_check"] = result
    bar.clear()
    warn_if_poor(result, reader.describe(), sae.cfg.reader)


def _readable_manifest(folder: Path, overwrite: bool) -> dict | None:
    """The store's manifest, or None when it is damaged and ``overwrite`` allows replacing it."""
    from .verify import StoreError, check_manifest

    try:
        manifest = read_manifest(folder)
        identity(manifest)
        manifest["source"]["docs_hash"]
        check_manifest(folder, manifest)  # missing or damaged files are repaired below
        return manifest
    except (SaetoolsError, KeyError, TypeError) as exc:
        if overwrite:
            return None
        raise StoreError(
            folder, "manifest.json", f"damaged ({exc}); pass --overwrite to encode afresh"
        ) from None


def _examples_readable(folder: Path) -> bool:
    from .verify import StoreError, read_examples

    try:
        read_examples(folder, ["latent"])
        return True
    except StoreError:  # missing or damaged: written again
        return False


def _repair(folder, manifest, docs: SpooledDocs, reader, sae, min_contribution, dtype) -> bool:
    """Encode again the shards of ``manifest`` that are missing, unreadable or inconsistent
    (and ``docs.parquet`` if damaged), under their canonical names; True if anything was."""
    from .verify import StoreError, read_docs, read_shard

    repaired = False
    try:
        read_docs(folder, manifest["n_docs"], ["id"])
    except StoreError:
        os.replace(docs.path, folder / "docs.parquet")
        repaired = True
    texts = DocColumn(folder / "docs.parquet")
    for number, shard in enumerate(manifest["shards"]):
        try:
            read_shard(folder, shard, sae.cfg.d_sae)
            continue
        except StoreError as exc:
            print(f"repairing: {exc}", file=sys.stderr)
        lo, hi = shard["rows"]
        name = f"acts/shard-{number:05d}.safetensors"
        (folder / "acts").mkdir(exist_ok=True)
        nnz = encode_shard(folder / name, reader, sae, texts, lo, hi, min_contribution, dtype)
        manifest["shards"][number] = {"file": name, "rows": [lo, hi], "nnz": nnz}
        repaired = True
    if repaired:
        manifest["nnz"] = sum(int(s["nnz"]) for s in manifest["shards"])
        write_json_atomic(folder / MANIFEST, manifest)
    return repaired
