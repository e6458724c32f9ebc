"""Does another activity threshold, or a multiple-testing filter, find more planted properties?

    python -m benchmarks.quality.thresholds --part short   # ~3 min with a warm store cache
    python -m benchmarks.quality.thresholds --part long [--sae saetools/models/NAME]

The cases are those of ``python -m benchmarks.quality`` (same corpora, splits, plants, rates
and hit rule: a top-5 significant B>A latent with AUROC >= 0.9 on the planted documents).
Variants of the diff's frequency test, each with Benjamini-Hochberg at q < 0.05 and ranking by
Cohen's h:

* ``rho R``: active above R times the latent's largest pooled activation (the default, 0.5);
* ``rho R, Tarone``: the same, with Benjamini-Hochberg over the *testable* latents only (the
  smallest m whose latents' least reachable Fisher p-value is under 0.05 / m; Tarone 1990,
  Gilbert 2005): a latent active in a dozen documents can never be significant, so it need not
  dilute the correction;
* ``best of rho 0.5 / 0.75, Tarone``: per latent, the smaller p-value of the two thresholds,
  doubled (Bonferroni within the latent), then as above.

Prints the hits per variant and how many null splits (nothing planted) report any latent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import saetools
from saetools.analyses.diff import latent_thresholds
from saetools.analyses.stats import benjamini_hochberg, cohens_h, fisher_exact_two_sided
from saetools.evaluation import long_documents, short_documents
from saetools.sae import packs
from saetools.store.activity import ColumnData

from .planted_diff import PROPERTIES, RATES, hit_rank, mixed_b, plant_texts, split_halves

VARIANTS = {
    "rho 0.5 (default)": ((0.5,), False),
    "rho 0.5, Tarone": ((0.5,), True),
    "rho 0.75": ((0.75,), False),
    "rho 0.75, Tarone": ((0.75,), True),
    "best of rho 0.5 / 0.75, Tarone": ((0.5, 0.75), True),
}
ALPHA = 0.05


def least_p(total: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """The smallest two-sided Fisher p-value a latent active in ``total`` documents can reach."""
    in_b = np.minimum(total, n_b)
    in_a = np.minimum(total, n_a)
    return np.minimum(
        fisher_exact_two_sided(total - in_b, n_a, in_b, n_b),
        fisher_exact_two_sided(in_a, n_a, total - in_a, n_b),
    )


def tarone_q(p: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values over the testable hypotheses (the rest get 1)."""
    for m in range(1, len(p) + 1):
        testable = floor <= ALPHA / m
        if testable.sum() <= m:
            break
    q = np.ones(len(p))
    if testable.any():
        q[testable] = benjamini_hochberg(p[testable])
    return q


def ranked_up(a: sp.csr_matrix, b: sp.csr_matrix, rhos: tuple[float, ...], tarone: bool):
    """Significant B>A latents, best Cohen's h first, under one variant."""
    n_a, n_b = a.shape[0], b.shape[0]
    cols_a, cols_b = ColumnData(a), ColumnData(b)
    p = np.ones(a.shape[1])
    effect = np.zeros(a.shape[1])
    floor = np.ones(a.shape[1])
    for rho in rhos:
        tau = latent_thresholds(cols_a, cols_b, "relative", rho)
        count_a, count_b = cols_a.counts_above(tau), cols_b.counts_above(tau)
        p_rho = np.minimum(fisher_exact_two_sided(count_a, n_a, count_b, n_b) * len(rhos), 1)
        better = p_rho < p
        p = np.where(better, p_rho, p)
        effect = np.where(better, cohens_h(count_a / n_a, count_b / n_b), effect)
        floor = np.minimum(floor, least_p(count_a + count_b, n_a, n_b) * len(rhos))
    q = tarone_q(p, floor) if tarone else benjamini_hochberg(p)
    up = np.flatnonzero((q < ALPHA) & (effect > 0))
    return up[np.argsort(-effect[up], kind="stable")]


def main() -> None:
    """Print a table of hits per variant for one part of the planted benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("short", "long"), default="short")
    parser.add_argument("--sae", default=None, help="an SAE folder (default: the shipped default)")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    if args.sae:
        packs.DEFAULT_SAE_DIR = Path(args.sae).resolve()
    texts, pool = short_documents(1200) if args.part == "short" else long_documents(600)
    clean = saetools.encode(texts, progress=True).matrix.tocsr()
    hits = dict.fromkeys(VARIANTS, 0)
    nulls = dict.fromkeys(VARIANTS, 0)
    cases = 0
    for seed in range(args.seeds):
        a_rows, b_rows = split_halves(len(texts), seed)
        a = clean[a_rows]
        for name, (rhos, tarone) in VARIANTS.items():
            nulls[name] += int(
                len(ranked_up(a, clean[b_rows], rhos, tarone)) > 0
                or len(ranked_up(clean[b_rows], a, rhos, tarone)) > 0
            )
        for plant in PROPERTIES.values():
            rows, planted_texts = plant_texts(texts, pool, b_rows, plant, seed, max(RATES))
            planted = saetools.encode(planted_texts, progress=False).matrix.tocsr()
            for rate in RATES:
                where = {i: k for k, i in enumerate(rows[: max(1, round(rate * len(b_rows)))])}
                mask = np.isin(np.arange(len(b_rows)), list(where))
                b = mixed_b(clean, planted, b_rows, where)
                cases += 1
                for name, (rhos, tarone) in VARIANTS.items():
                    hits[name] += int(hit_rank(ranked_up(a, b, rhos, tarone), b, mask) > 0)
    print(f"| variant ({args.part} documents) | hits (acc@5) | null splits with any latent |")
    print("|---|---|---|")
    for name in VARIANTS:
        print(f"| {name} | {hits[name]}/{cases} | {nulls[name]}/{args.seeds} |")


if __name__ == "__main__":
    main()
