"""Analyses of stores larger than RAM, read shard by shard: time and peak RSS.

    python -m benchmarks.speed --only out_of_core [--docs 10000000] [--folder DIR]
                                                 [--per-doc 870] [--distinct 4]

Builds two synthetic stores of ``docs / 2`` documents each in the real on-disk format (shards of
2,048 documents, float16 values, uint16 latent ids, int32 spans) with the shipped SAE's 4,608
latents and its real density: ``--per-doc`` stored latents per document (~870 for the shipped
SAE on ~130-token answers), drawn with a Zipf-like popularity. B's documents have latent 7
active three times as often as A's (the planted difference). A third store holds all ``docs``
documents (A's rows, then B's). To fit the disk, each store's shards are hard links to
``--distinct`` generated shards (cycled), so the files on disk are a few shards, but every
analysis reads every shard, 12 bytes per entry, as it would on a store of that size.

Each analysis runs in a fresh process that opens the stores the default way (lazily, being
above ``IN_MEMORY_MAX_ENTRIES``) and reports its wall time and its own peak RSS:

* writing ``examples.parquet`` (the end of an encode), for the 10M-document store;
* ``diff`` A vs B (two stores, ``docs`` documents together; column statistics computed and
  saved on the way);
* NPMI top pairs of the first ``--npmi-docs`` documents (exact pair counting does work in
  proportion to documents x active latents squared, ~300 active latents per document here, so
  it is measured on 1M documents and scales linearly from there);
* a label search of the whole store, first and second query.

Baseline, in the same run: the bytes an in-memory open would need (16 per entry as a SciPy CSR
matrix with float32 values, int32 ids and spans) and the RSS of opening one distinct shard.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARD_DOCS = 2048
TEXT_CHARS = 600  # a ~130-token answer
FILLER = "This synthetic answer stands in for a real one of about the same length. " * 8
OPEN = "import saetools\n\ndef lazy(path):\n    return saetools.open_store(path, lazy=True)\n"
PLANTED = 7


def base_shard(path: Path, seed: int, per_doc: int, d_sae: int, planted_share: float) -> int:
    """Write one shard of ``SHARD_DOCS`` synthetic documents; returns its entry count."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    log_p = -0.7 * np.log(np.arange(1, d_sae + 1))
    keys = log_p + rng.gumbel(size=(SHARD_DOCS, d_sae))  # Gumbel top-k: weighted, no repeats
    chosen = np.sort(np.argpartition(-keys, per_doc - 1, axis=1)[:, :per_doc], axis=1)
    scale = np.random.default_rng(1).lognormal(1.0, 0.5, size=d_sae)  # same in every shard
    # value / latent's maximum ~ Beta(2, 3): a third of entries above half the maximum, as in
    # the shipped SAE's stores (median 0.40, 34% above 0.5)
    values = (scale[chosen] * rng.beta(2.0, 3.0, size=chosen.shape)).astype(np.float32)
    at = chosen == PLANTED
    values[at] = 0.1 * scale[PLANTED]  # weak where it fires by chance
    plant = rng.random(SHARD_DOCS) < planted_share
    rows = np.flatnonzero(plant & at.any(axis=1))
    values[rows] = np.where(at[rows], scale[PLANTED], values[rows])
    starts = rng.integers(0, TEXT_CHARS - 8, size=chosen.shape).astype(np.int32)
    tensors = {
        "indptr": np.arange(0, chosen.size + 1, per_doc, dtype=np.int64),
        "indices": chosen.reshape(-1).astype(np.uint16),
        "values": values.reshape(-1).astype(np.float16),
        "spans": np.stack([starts.reshape(-1), starts.reshape(-1) + 4], axis=1),
    }
    save_file(tensors, str(path))
    return int(chosen.size)


def docs_table(path: Path, prefix: str, n: int) -> None:
    """``docs.parquet`` of ``n`` short synthetic documents, written in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("id", pa.string()), ("source", pa.string()), ("line", pa.int64()), ("text", pa.string())]
    )
    step = 65_536
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n, step):
            rows = np.arange(lo, min(n, lo + step))
            ids = np.char.add(prefix, rows.astype(str))
            text = np.char.add(rows.astype(str), ": " + FILLER[: TEXT_CHARS - 10])
            writer.write_table(
                pa.table(
                    {
                        "id": ids.tolist(),
                        "source": ["synthetic"] * len(rows),
                        "line": rows + 1,
                        "text": text.tolist(),
                    },
                    schema=schema,
                )
            )


def build_store(folder: Path, template: dict, parts: list[tuple[list[Path], list[int], int, str]]):
    """A store whose shards hard-link the given base shards, cycled: ``parts`` are
    (base files, their entry counts, documents, id prefix), in row order."""
    from saetools.store.docs_table import concat_tables
    from saetools.store.manifest import write_json_atomic

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "acts").mkdir(parents=True)
    shards, row, nnz = [], 0, 0
    for bases, counts, n, _ in parts:
        for k in range(n // SHARD_DOCS):
            name = f"acts/shard-{len(shards):06d}.safetensors"
            os.link(bases[k % len(bases)], folder / name)
            count = counts[k % len(bases)]
            shards.append({"file": name, "rows": [row, row + SHARD_DOCS], "nnz": count})
            row += SHARD_DOCS
            nnz += count
    tables = []
    for _, _, n, prefix in parts:
        docs_table(folder / f"docs-{prefix}.parquet", prefix, n)
        tables.append(folder / f"docs-{prefix}.parquet")
    concat_tables(tables, folder / "docs.parquet")
    for table in tables:
        table.unlink()
    manifest = dict(template)
    source = {**template["source"], "name": folder.name, "docs_hash": f"synthetic-{row}"}
    manifest.update(
        n_docs=row, nnz=nnz, shards=shards, complete=False, skipped_empty=0, source=source
    )
    write_json_atomic(folder / "manifest.json", manifest)
    return manifest


def measured(name: str, code: str, folder: Path) -> dict:
    """Run ``code`` in a fresh Python; it prints one JSON line; add wall time and peak RSS."""
    wrapper = (
        "import json, resource, time\n"
        "start = time.perf_counter()\n"
        f"{code}\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'rss_gib': "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, **result}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper], cwd=folder, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{name}: {out['seconds']:,.0f} s, peak RSS {out['rss_gib']:.2f} GiB  "
        + "  ".join(f"{k}={v}" for k, v in out.items() if k not in ("seconds", "rss_gib")),
        flush=True,
    )
    return out


def _complete(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("complete", False)


def finish(folder: Path, name: str) -> None:
    """Write a built store's ``examples.parquet`` and mark it complete (as an encode ends)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from saetools.store.writer import finish_store\n"
            "from pathlib import Path\nimport json\n"
            f"m = json.loads(Path('{name}/manifest.json').read_text())\n"
            f"finish_store(Path('{name}'), m, 0)",
        ],
        cwd=folder,
        check=True,
    )


def build_all(folder: Path, template: dict, args, d_sae: int) -> dict:
    """Generate the distinct shards and the four stores (A, B, all, the NPMI slice)."""
    half = (args.docs // 2) // SHARD_DOCS * SHARD_DOCS
    npmi_docs = min(args.npmi_docs, args.docs) // SHARD_DOCS * SHARD_DOCS
    start = time.perf_counter()
    parts = {}
    for side, share, seed in (("a", 0.05, 0), ("b", 0.15, 100)):
        bases = [folder / f"base-{side}-{k}.safetensors" for k in range(args.distinct)]
        counts = [
            base_shard(path, seed + k, args.per_doc, d_sae, share) for k, path in enumerate(bases)
        ]
        parts[side] = (bases, counts, half, side)
    manifests = {
        "a": build_store(folder / "a", template, [parts["a"]]),
        "b": build_store(folder / "b", template, [parts["b"]]),
        "all": build_store(folder / "all", template, [parts["a"], parts["b"]]),
        "npmi": build_store(folder / "npmi", template, [(*parts["a"][:2], npmi_docs, "n")]),
    }
    built = time.perf_counter() - start
    nnz = manifests["all"]["nnz"]
    shard_bytes = os.path.getsize(parts["a"][0][0])
    print(
        f"stores: {manifests['all']['n_docs']:,} documents in {len(manifests['all']['shards']):,} "
        f"shards, {nnz:,} entries ({nnz / manifests['all']['n_docs']:.0f} per document), "
        f"{shard_bytes / SHARD_DOCS / 1024:.1f} KiB per document on disk; built in {built:.0f} s"
    )
    print(
        f"baseline: an in-memory open needs {nnz * 16 / 2**30:,.0f} GiB (16 bytes per entry); "
        f"this machine has {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f}"
        " GiB",
        flush=True,
    )
    for name in ("a", "b", "npmi"):
        finish(folder, name)
    measured(
        "one shard in memory",
        "import saetools\nstore = saetools.open_store('a', lazy=False)\n"
        "from saetools.store.sharded import iter_blocks\nblock = next(iter_blocks(store))\n"
        "result = {'entries': int(block.matrix.nnz)}",
        folder,
    )
    measured(
        "examples.parquet (all)",
        "from saetools.store.writer import finish_store\nfrom pathlib import Path\nimport json\n"
        "m = json.loads(Path('all/manifest.json').read_text())\nfinish_store(Path('all'), m, 0)\n"
        "result = {}",
        folder,
    )
    return manifests


def main() -> None:
    """Build the stores (or reuse them), then time each analysis in its own process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000_000)
    parser.add_argument("--per-doc", type=int, default=870)
    parser.add_argument("--distinct", type=int, default=4)
    parser.add_argument("--npmi-docs", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/saetools-out-of-core"))
    parser.add_argument("--reuse", action="store_true", help="keep stores already built there")
    args = parser.parse_args()
    import saetools
    from saetools.sae.packs import DEFAULT_SAE_DIR

    folder = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    template_store = saetools.encode(
        ["A first answer.", "A second one."], out=folder / "template", progress=False
    )
    template = json.loads((template_store.folder / "manifest.json").read_text())
    names = ("a", "b", "all", "npmi")
    if args.reuse and all(_complete(folder / name) for name in names):
        for name in names:  # measure the first analysis again
            (folder / name / "column-stats.safetensors").unlink(missing_ok=True)
        manifests = {n: json.loads((folder / n / "manifest.json").read_text()) for n in names}
        print(f"stores reused from {folder}: {manifests['all']['n_docs']:,} documents")
    else:
        manifests = build_all(folder, template, args, template_store.d_sae)
    diff = (
        OPEN + "a, b = lazy('a'), lazy('b')\n"
        "assert a.lazy and b.lazy\nframe = saetools.diff(a, b, progress=False)\n"
        "top = frame.iloc[0]\nresult = {'significant': int(frame['significant'].sum()), "
        "'top_latent': int(top['latent']),\n"
        "'top_freq': f\"{top['freq_a']:.3f}->{top['freq_b']:.3f}\"}"
    )
    measured("diff A vs B (first: column statistics computed)", diff, folder)
    search = (
        OPEN + "frame = saetools.search(lazy('all'), 'questions', "
        "progress=False)\nresult = {'results': len(frame), 'best': frame['id'].iloc[0]}"
    )
    measured("search (all, first query: statistics computed)", search, folder)
    measured("search (all, second query)", search, folder)
    npmi_docs = manifests["npmi"]["n_docs"]
    measured(
        f"NPMI top pairs ({npmi_docs:,} documents of A)",
        OPEN + "frame = saetools.correlate(lazy('npmi'), progress=False, "
        "examples=0)\nresult = {'pairs': len(frame),\n"
        "'best_npmi': round(float(frame['npmi'].iloc[0]), 3)}",
        folder,
    )
    print(f"(labels from {DEFAULT_SAE_DIR.name}; stores under {folder})")


if __name__ == "__main__":
    main()
