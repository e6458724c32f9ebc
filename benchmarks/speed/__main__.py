"""Speed and memory benchmarks, each against a baseline measured in the same run.

    python -m benchmarks.speed                        # all of them, default sizes
    python -m benchmarks.speed --only diff --docs 100000   # one, with its own options

Parts: reader (hooked reader vs naive full forward), train (sparse vs dense SAE training),
diff (1M-document synthetic store), analyses (NPMI, search, targeted clustering at scale),
encode (encode vs naive loop; bytes per document), ray_encode (encode on a local Ray cluster
vs one process), out_of_core (diff, NPMI and search of 10M-document stores read shard by shard,
with peak RSS), gpu_reader (reader and encode path vs the naive forward on a GPU, and the share
of the matmul peak an 8B-shaped reader reaches; small shapes on a CPU). ``--only NAME --help``
lists a part's options.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

PARTS = (
    "reader",
    "train",
    "diff",
    "analyses",
    "encode",
    "ray_encode",
    "out_of_core",
    "gpu_reader",
)


def main() -> None:
    """Run the chosen parts in order, passing unknown options to a single chosen part."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated subset")
    args, rest = parser.parse_known_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if rest and len(parts) > 1:
        parser.error("options of a part need --only with that one part")
    for name in parts:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        sys.argv = [f"benchmarks.speed.{name}", *rest]
        importlib.import_module(f"benchmarks.speed.{name}").main()
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
