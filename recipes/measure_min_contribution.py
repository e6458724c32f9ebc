"""Store size against planted-property recovery for --min-contribution (default SAE, or --sae).

python recipes/measure_min_contribution.py --corpus runs/corpus [--sae saetools/models/NAME]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from saetools.analyses.diff import diff_matrices
from saetools.evaluation import PLANTS, best_top_auroc, planted_split
from saetools.readers import load_reader
from saetools.sae.packs import resolve_sae
from saetools.store.pooling import pooled_matrix


def main() -> None:
    """Print a table: minimum contribution, entries per document, bytes, planted hits."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus"))
    parser.add_argument("--seeds", type=int, default=3, help="random splits per plant and rate")
    parser.add_argument("--minimums", default="0,0.05,0.1,0.15", help="comma-separated values")
    parser.add_argument("--sae", default=None, help="an SAE folder (default: the shipped default)")
    args = parser.parse_args()
    valid = [json.loads(line)["text"] for line in open(args.corpus / "valid.jsonl")]
    sae, _ = resolve_sae(args.sae)
    reader = load_reader(None, sae.cfg.reader["layer"], quiet=True)
    clean = list(reader.iter_activations(valid))
    variants = {}
    for plant in PLANTS:
        rng = random.Random(123)
        variants[plant] = list(reader.iter_activations([PLANTS[plant](t, rng) for t in valid]))
    print("| min contribution | entries / doc | bytes / doc (vector + spans) | planted hits |")
    print("|---|---|---|---|")
    for minimum in [float(m) for m in args.minimums.split(",")]:
        clean_m = pooled_matrix(clean, sae, minimum)
        hits, total = 0, 0
        for plant in PLANTS:
            planted_m = pooled_matrix(variants[plant], sae, minimum)
            for rate in (0.03, 0.1):
                for seed in range(args.seeds):
                    case = planted_split(valid, plant, rate, seed)
                    order = list(range(len(valid)))
                    random.Random(seed).shuffle(order)
                    a_rows = np.array(order[: len(order) // 2])
                    b = sp.vstack(
                        [
                            planted_m[r] if case.planted[i] else clean_m[r]
                            for i, r in enumerate(case.b_rows)
                        ]
                    ).tocsr()
                    frame = diff_matrices(clean_m[a_rows], b)
                    up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
                    hits += best_top_auroc(up, b, case.planted)[1] > 0
                    total += 1
        per_doc = clean_m.nnz / clean_m.shape[0]
        print(
            f"| {minimum} | {per_doc:.0f} | {per_doc * 4:.0f} + {per_doc * 8:.0f} | "
            f"{hits}/{total} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
