"""Encoding on Ray against encoding in one process, same documents, same run.

    python -m benchmarks.speed --only ray_encode [--docs 512] [--workers 2] [--shard-docs 256]

Both encode the first ``--docs`` documents of the example corpus with the default reader and
the shipped SAE into a fresh store; Ray starts a local cluster (its start-up is counted, as a
user waits for it too) with ``--workers`` actors, each loading its own reader. Prints
documents/s of each and their ratio, and checks that both stores are equal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import saetools

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus.jsonl"


def main() -> None:
    """Time both engines and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-docs", type=int, default=256)
    args = parser.parse_args()
    rows = [json.loads(line) for line in EXAMPLES.open()][: args.docs]
    folder = Path(tempfile.mkdtemp(prefix="ray-encode-"))
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timings = {}
    for engine in ("local", "ray"):
        start = time.perf_counter()
        saetools.encode(
            data,
            out=folder / engine,
            engine=engine,
            workers=args.workers,
            shard_docs=args.shard_docs,
            progress=False,
        )
        timings[engine] = time.perf_counter() - start
    local, ray = saetools.open_store(folder / "local"), saetools.open_store(folder / "ray")
    same = np.array_equal(local.matrix.data, ray.matrix.data) and np.array_equal(
        local.matrix.indices, ray.matrix.indices
    )
    print(f"{len(rows)} documents, {args.workers} Ray workers, shards of {args.shard_docs}")
    for engine, seconds in timings.items():
        print(f"  {engine:5s}: {seconds:6.1f} s, {len(rows) / seconds:5.1f} docs/s")
    print(f"  ray / local: {timings['local'] / timings['ray']:.2f}x; stores equal: {same}")


if __name__ == "__main__":
    main()
