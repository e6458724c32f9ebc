"""Planted-property recovery with the shipped SAE and with --fit, on the same cases.

    python recipes/planted_default_vs_fit.py [--seeds 0 1] [--rates 0.03 0.1]

Example corpus, random halves, a property planted into B; hit = one of the top 5 B>A latents
has AUROC >= 0.9 on the planted documents. Prints a markdown table row per case.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import saetools
from saetools.evaluation import best_top_auroc, planted_split
from saetools.readers import load_reader

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "corpus.jsonl"


def main() -> None:
    """Run every case with both SAEs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.03, 0.1])
    parser.add_argument("--fit-rates", type=float, nargs="+", default=[0.1])
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(EXAMPLES)]
    reader = load_reader(quiet=True)
    print("| property | rate | seed | shipped SAE: best top-5 AUROC (rank of hit) | --fit |")
    print("|---|---|---|---|---|")
    for plant in ("phrase", "apology"):
        for rate in args.rates:
            for seed in args.seeds:
                case = planted_split(texts, plant, rate, seed)
                cells = []
                for fit in (False, True):
                    if fit and rate not in args.fit_rates:
                        cells.append("–")
                        continue
                    frame = saetools.diff(
                        case.a, case.b, reader=reader, fit=fit, progress=False, examples=0
                    )
                    up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
                    sae = None
                    if fit:
                        from saetools.sae.fit import fit_sae_for

                        sae = fit_sae_for(case.a, case.b, reader=reader, progress=False, seed=0)
                    store_b = saetools.encode(case.b, reader=reader, sae=sae, progress=False)
                    auroc, rank = best_top_auroc(up, store_b.matrix, case.planted)
                    cells.append(f"{auroc:.2f} ({'rank ' + str(rank) if rank else 'miss'})")
                print(f"| {plant} | {rate:.0%} | {seed} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
