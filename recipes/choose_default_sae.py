"""Layer and size sweep for the default SAE (SmolLM2-135M): FVU, dead latents, loss recovered
and planted-property recovery on held-out text. Writes runs/sweep/results.jsonl and prints a
markdown table (copied into docs/default-model.md).

    python recipes/choose_default_sae.py --corpus runs/corpus --out runs/sweep
    python recipes/choose_default_sae.py --corpus runs/answers --out runs/sweep-answers \
        --configs 15:4608:32,15:16384:32,15:4608:64 --train-docs 5000 --valid-docs 1000

Each configuration is ``layer:latents:k``; its SAE stays in ``OUT/sae-L{layer}-{latents}-k{k}``
(loadable with ``--sae``, e.g. by ``python -m benchmarks.quality --parts short --sae DIR``).
A rerun skips the configurations already in results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import scipy.sparse as sp

from saetools.analyses.diff import diff_matrices
from saetools.evaluation import PLANTS, best_top_auroc, planted_split
from saetools.readers import load_reader
from saetools.sae.activations import harvest
from saetools.sae.evaluate import loss_recovered
from saetools.sae.train import TrainConfig, Trainer, evaluate_sae
from saetools.store.pooling import pooled_matrix

CONFIGS = [
    (8, 2304, 32),
    (15, 2304, 32),
    (15, 4608, 32),
    (15, 4608, 64),
    (22, 4608, 32),
]


def read(path: Path, limit: int | None = None) -> list[str]:
    """Texts of a corpus split."""
    with open(path) as fh:
        rows = [json.loads(line)["text"] for line in fh]
    return rows[:limit] if limit else rows


def main() -> None:
    """Run the sweep."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus"))
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--train-docs", type=int, default=7000)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--valid-docs", type=int, default=None, help="use the first N held out")
    parser.add_argument(
        "--configs",
        default=",".join(":".join(str(v) for v in c) for c in CONFIGS),
        help="layer:latents:k, comma-separated",
    )
    args = parser.parse_args()
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    train = read(args.corpus / "train.jsonl", args.train_docs)
    valid = read(args.corpus / "valid.jsonl", args.valid_docs)
    results = args.out / "results.jsonl"
    done = set()
    if results.exists():
        done = {json.dumps(json.loads(line)["config"]) for line in open(results)}
    cases = {
        (plant, seed): planted_split(valid, plant, 0.1, seed) for plant in PLANTS for seed in (0, 1)
    }
    for layer in sorted({c[0] for c in configs}):
        todo = [c for c in configs if c[0] == layer and json.dumps(list(c)) not in done]
        if not todo:
            continue
        reader = load_reader(None, layer, quiet=True)
        cache = harvest(reader, train, args.out / f"acts-L{layer}", progress=True)
        clean = list(reader.iter_activations(valid))
        variants = {}
        for plant in PLANTS:
            rng = random.Random(123)
            variants[plant] = list(reader.iter_activations([PLANTS[plant](t, rng) for t in valid]))
        for _, latents, k in todo:
            start = time.time()
            cfg = TrainConfig(latents=latents, k=k, epochs=args.epochs, seed=0)
            folder = args.out / f"sae-L{layer}-{latents}-k{k}"
            result = Trainer(
                cfg, cache, folder, reader_info=reader.describe(), progress=False
            ).train()
            sae = result.sae
            held_out = evaluate_sae(sae, (i.acts.float() for i in clean), latents)
            ce = loss_recovered(reader, sae, valid[:120], max_tokens=128)
            hits = []
            clean_m = pooled_matrix(clean, sae)
            for (plant, seed), case in cases.items():
                # Rebuild the case's B from cached activations of the planted variants.
                a_rows, b_rows = case.a_rows, case.b_rows
                planted_m = pooled_matrix([variants[plant][r] for r in b_rows], sae)
                b = sp.vstack(
                    [planted_m[i] if case.planted[i] else clean_m[r] for i, r in enumerate(b_rows)]
                ).tocsr()
                frame = diff_matrices(
                    clean_m[a_rows], b, test="frequency", threshold="relative", rho=0.5
                )
                up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
                auc, rank = best_top_auroc(up, b, case.planted)
                hits.append({"plant": plant, "seed": seed, "auroc": auc, "rank": rank})
            row = {
                "config": [layer, latents, k],
                "train_fvu": result.fvu,
                "valid_fvu": held_out["fvu"],
                "valid_dead": held_out["dead_fraction"],
                "loss_clean": ce["clean"],
                "loss_sae": ce["sae"],
                "loss_zero": ce["zero"],
                "loss_recovered": ce["fraction"],
                "planted_hits": sum(h["rank"] > 0 for h in hits),  # noqa: E501
                "planted_cases": len(hits),
                "planted": hits,
                "tokens": cache.n_tokens,
                "seconds": round(time.time() - start),
            }
            with open(results, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(
        "| layer | latents | k | FVU (valid) | dead | CE clean → SAE (zero) "
        "| loss recovered | planted hits |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for line in open(results):
        r = json.loads(line)
        layer, latents, k = r["config"]
        print(
            f"| {layer} | {latents} | {k} | {r['valid_fvu']:.3f} | {r['valid_dead']:.1%} | "
            f"{r['loss_clean']:.2f} → {r['loss_sae']:.2f} ({r['loss_zero']:.2f}) | "
            f"{r['loss_recovered']:.1%} | {r['planted_hits']}/{r['planted_cases']} |"
        )


if __name__ == "__main__":
    main()
