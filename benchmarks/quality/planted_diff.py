"""Planted-difference benchmark: does a diff name the property planted into part of B?

A corpus is split at random into halves A and B; a property is planted into p of B (the planted
documents of a smaller p are a subset of those of a larger one). A method ranks *items* that are
more frequent in B; a case is a hit at rank r when the r-th significant B>A item is the first
whose presence separates the planted documents from the rest of B with AUROC ≥ 0.9.

Methods (same two-proportion / Fisher test, Benjamini-Hochberg and Cohen's-h ranking for all
item-based ones):

- ``saetools``: the shipped SAE's max-pooled latents, default diff, one item per latent;
- ``saetools properties``: the same diff with its significant latents grouped into properties
  (``saetools.analyses.grouping``, default similarity); a property is a hit when the largest of
  its members' activations (each divided by the member's activity threshold) separates the
  planted documents with AUROC ≥ 0.9, so a group padded with unrelated latents stops being one;
- ``n-gram``: case-sensitive word and punctuation uni- and bigrams present in a document;
- ``MiniLM clusters``: k-means (k = 10) on all-MiniLM-L6-v2 document embeddings (long documents:
  mean of 150-word chunks), each cluster an item;
- ``MiniLM probe``: a logistic probe A vs B (5-fold out-of-fold scores); it names no property, so
  it counts as a hit (rank 1) when at least half of the m = min(10, #planted) most B-like B
  documents carry the plant — what a user reading them would need;
- ``perfect latent`` (the ceiling, not a method): 1 when a latent that fires on exactly the
  planted documents, added to the SAE's latents, is significant under the same diff. Where it is
  not, no SAE could name the case at this corpus size: Benjamini-Hochberg at rank 1 among 4,608
  latents needs p < 1.1e-5, which a perfect latent on 0 vs k documents reaches at k = 18 of 600
  per side (3%, Fisher p 6.7e-6) but not at k = 9 of 300 (3%, p 3.7e-3) or k = 6 of 600 (1%).

Null splits (nothing planted) report how often any item is significant at q < 0.05.

The grouping sweep ranks every case up to 20 rows deep for latents and for properties at several
similarity thresholds: acc@1, acc@5, how many rows a reader reads before the planted property
(median over the cases found), and how many significant B>A rows there are to read.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from saetools.analyses.diff import diff_matrices
from saetools.analyses.grouping import assign_groups
from saetools.evaluation import APOLOGY_OPENERS, ENTHUSIASM, FIXED_PHRASE, auroc
from saetools.options import GROUP_SIMILARITY

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


class Plant(NamedTuple):
    """A property: how to plant it into a text, and a one-line description (for LLM judging)."""

    apply: Callable[[str, random.Random, list[str], int], str]
    description: str


def _bullets(text: str, rng: random.Random, pool: list[str], k: int) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    return "\n".join(f"- {s}" for s in sentences)


PROPERTIES: dict[str, Plant] = {
    "phrase (fixed)": Plant(
        lambda t, rng, pool, k: f"{t} {FIXED_PHRASE}", f"ends with the phrase '{FIXED_PHRASE}'"
    ),
    "apology (6 wordings)": Plant(
        lambda t, rng, pool, k: f"{rng.choice(APOLOGY_OPENERS)} {t}", "the writer apologises"
    ),
    "enthusiasm (6 wordings)": Plant(
        lambda t, rng, pool, k: f"{rng.choice(ENTHUSIASM)} {t}", "enthusiastic, excited tone"
    ),
    "refusal (6 wordings)": Plant(
        lambda t, rng, pool, k: f"{t} {rng.choice(REFUSALS)}", "refuses to help with a request"
    ),
    "hedging (6 wordings)": Plant(
        lambda t, rng, pool, k: f"{rng.choice(HEDGES)} {t[0].lower()}{t[1:]}",
        "hedging, uncertain language",
    ),
    "format: capitals": Plant(lambda t, rng, pool, k: t.upper(), "written in capital letters"),
    "format: bullet list": Plant(_bullets, "formatted as a bulleted list"),
    "format: code block": Plant(
        lambda t, rng, pool, k: f"{t}\n{rng.choice(CODE)}", "contains a code block"
    ),
    "language: Spanish sentence": Plant(
        lambda t, rng, pool, k: f"{t} {rng.choice(SPANISH)}", "contains a sentence in Spanish"
    ),
    "topic: technology articles": Plant(
        lambda t, rng, pool, k: pool[k % len(pool)], "about technology"
    ),
}
RATES = (0.01, 0.03, 0.10, 0.30)
CEILING = "perfect latent"
METHODS = (
    "saetools",
    "saetools properties",
    "n-gram",
    "MiniLM clusters",
    "MiniLM probe",
    CEILING,
)
BASELINES = METHODS[2:5]
GROUP_SWEEP = (None, 0.1, 0.2, 0.3, 0.5, 0.7)
"""Grouping thresholds tried (None: one row per latent)."""
SWEEP_DEPTH = 20
CLUSTERS = 10


def gram_set(text: str) -> frozenset[str]:
    """Case-sensitive word/punctuation unigrams and bigrams of a text."""
    tokens = re.findall(r"\w+|[^\w\s]", text)
    return frozenset(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)}


def gram_matrix(sets: list[frozenset[str]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """0/1 CSR of n-gram presence under ``vocabulary`` (grams outside it are ignored)."""
    indptr, indices = [0], []
    for grams in sets:
        indices.extend(sorted(vocabulary[g] for g in grams if g in vocabulary))
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.ones(len(indices), np.float32), np.array(indices, np.int64), np.array(indptr)),
        shape=(len(sets), len(vocabulary)),
    )


def gram_vocabulary(sets: list[frozenset[str]], min_count: int = 2) -> dict[str, int]:
    """Grams present in at least ``min_count`` documents."""
    counts = Counter(g for grams in sets for g in grams)
    return {g: k for k, g in enumerate(sorted(g for g, c in counts.items() if c >= min_count))}


def minilm_vectors(texts: list[str], minilm, words: int = 150) -> np.ndarray:
    """Unit MiniLM vectors; texts longer than ``words`` words are the mean of their chunks
    (MiniLM reads at most 256 word pieces)."""
    chunks, owner = [], []
    for i, text in enumerate(texts):
        tokens = text.split()
        for lo in range(0, max(len(tokens), 1), words):
            chunks.append(" ".join(tokens[lo : lo + words]))
            owner.append(i)
    vectors = minilm.embed(chunks)
    out = np.zeros((len(texts), vectors.shape[1]), np.float32)
    np.add.at(out, np.array(owner), vectors)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def mean_tokens(texts: list[str]) -> float:
    """Mean number of SmolLM2 tokens per text (the default reader's tokenizer)."""
    from saetools.readers import load_reader

    tokenized = load_reader(None, quiet=True).tokenize_many(texts)
    return float(np.mean([len(ids) for ids, _ in tokenized]))


def hit_rank(items, b_matrix, planted: np.ndarray, top: int = 5) -> int:
    """Rank (1-based) of the first of the ranked ``items`` (columns of ``b_matrix``) with
    AUROC ≥ 0.9 on the planted documents; 0 if none among the first ``top``."""
    for rank, item in enumerate(items[:top], start=1):
        if auroc(b_matrix[:, [int(item)]].toarray().ravel(), planted) >= 0.9:
            return rank
    return 0


def first_hit(frame, b_matrix, planted: np.ndarray, top: int = 5) -> int:
    """Rank (1-based) of the first significant B>A item with AUROC ≥ 0.9 on the planted
    documents; 0 if none among the first ``top``."""
    up = frame[(frame["direction"] == "B>A") & frame["significant"]]["latent"].to_numpy()
    return hit_rank(up, b_matrix, planted, top)


def ceiling_hit(a_matrix, b_matrix, planted: np.ndarray) -> int:
    """1 when a latent firing on exactly the planted B documents, added to the latents of A
    and B, is significant (B>A) under the default diff, else 0: whether the case can be found
    at all at this corpus size."""
    a = sp.hstack([a_matrix, sp.csr_matrix((a_matrix.shape[0], 1), dtype=np.float32)]).tocsr()
    b = sp.hstack([b_matrix, sp.csr_matrix(planted.astype(np.float32)[:, None])]).tocsr()
    frame = diff_matrices(a, b)
    row = frame[frame["latent"] == a_matrix.shape[1]]
    return int(bool(row["significant"].iloc[0]) and row["direction"].iloc[0] == "B>A")


def grouped_hits(frame, a, b, peaks_a, peaks_b, planted, min_similarity, top: int = 5):
    """``(rank, rows)``: rank (1-based) of the first significant B>A property whose members'
    largest relative activation has AUROC ≥ 0.9 on the planted documents (0 if none among the
    first ``top``), and how many significant B>A properties there are. ``min_similarity`` None:
    one property per latent."""
    if min_similarity is None:
        grouped = frame.assign(group=np.arange(len(frame)))
    else:
        grouped = assign_groups(frame, a, b, peaks_a, peaks_b, min_similarity=min_similarity)
    up = grouped[(grouped["direction"] == "B>A") & grouped["significant"]]
    groups = list(up.groupby("group", sort=False))
    for rank, (_, members) in enumerate(groups[:top], start=1):
        columns = b[:, members["latent"].to_numpy()].toarray()
        score = (columns / members["threshold"].to_numpy()[None, :]).max(axis=1)
        if auroc(score, planted) >= 0.9:
            return rank, len(groups)
    return 0, len(groups)


def cluster_items(vectors_a: np.ndarray, vectors_b: np.ndarray, seed: int):
    """One-hot k-means cluster memberships of A and B (clusters fitted on both)."""
    from sklearn.cluster import KMeans

    both = np.vstack([vectors_a, vectors_b])
    labels = KMeans(CLUSTERS, n_init=3, random_state=seed).fit_predict(both)
    onehot = sp.csr_matrix(
        (np.ones(len(labels), np.float32), (np.arange(len(labels)), labels)),
        shape=(len(labels), CLUSTERS),
    )
    return onehot[: len(vectors_a)], onehot[len(vectors_a) :]


def probe_hit(vectors_a: np.ndarray, vectors_b: np.ndarray, planted: np.ndarray, seed: int) -> int:
    """1 when at least half of the m = min(10, #planted) most B-like B documents (out-of-fold
    logistic probe) are planted, else 0."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([vectors_a, vectors_b])
    y = np.r_[np.zeros(len(vectors_a)), np.ones(len(vectors_b))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = cross_val_predict(
        LogisticRegression(max_iter=2000), x, y, cv=folds, method="decision_function"
    )[len(vectors_a) :]
    m = min(10, int(planted.sum()))
    top = np.argsort(-scores, kind="stable")[:m]
    return int(planted[top].sum() >= m / 2)


def mixed_b(clean_rows, planted_part, b_rows: np.ndarray, where: dict[int, int]):
    """B's rows: the planted version of position i (``planted_part[where[i]]``) where i is
    planted, else the clean row ``clean_rows[b_rows[i]]``; sparse or dense as given."""
    rows = [planted_part[where[i]] if i in where else clean_rows[r] for i, r in enumerate(b_rows)]
    return sp.vstack(rows).tocsr() if sp.issparse(clean_rows) else np.stack(rows)


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random A and B halves (row indices) of ``n`` documents."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return np.array(order[: n // 2]), np.array(order[n // 2 :])


def plant_texts(
    texts: list[str], pool: list[str], b_rows: np.ndarray, plant: Plant, seed: int, rate: float
) -> tuple[list[int], list[str]]:
    """Positions in B that get the plant (in order: the first round(p * |B|) for rate p) and
    their planted texts, for the largest ``rate``."""
    rng = random.Random(1000 + seed)
    chosen = rng.sample(range(len(b_rows)), len(b_rows))[: max(1, round(rate * len(b_rows)))]
    return chosen, [plant.apply(texts[b_rows[i]], rng, pool, k) for k, i in enumerate(chosen)]


class CorpusResult(NamedTuple):
    """Hit ranks per (property, rate) and method, null-split false discoveries, timings."""

    name: str
    n_docs: int
    seeds: int
    ranks: dict[tuple[str, float], dict[str, list[int]]]
    nulls: dict[str, int]
    seconds: float
    tokens_per_doc: float
    sweep: dict[float | None, list[tuple[int, int]]]
    """Per grouping threshold: (rank up to SWEEP_DEPTH, significant B>A rows) of every case."""


def run_corpus(
    name: str,
    texts: list[str],
    pool: list[str],
    *,
    seeds: int = 2,
    rates: tuple[float, ...] = RATES,
    properties: dict[str, Plant] | None = None,
    minilm=None,
    progress: bool = True,
) -> CorpusResult:
    """All planted cases of one corpus, for every method."""
    import saetools

    properties = PROPERTIES if properties is None else properties
    start = time.perf_counter()
    clean_store = saetools.encode(texts, progress=progress)
    clean = clean_store.matrix
    clean_peaks = clean_store.peak_starts
    sweep: dict[float | None, list[tuple[int, int]]] = {t: [] for t in GROUP_SWEEP}
    tokens_per_doc = mean_tokens(texts)
    clean_sets = [gram_set(t) for t in texts]
    clean_vectors = minilm_vectors(texts, minilm)
    words = gram_matrix(clean_sets, gram_vocabulary(clean_sets))  # for the null splits
    ranks: dict[tuple[str, float], dict[str, list[int]]] = {}
    nulls = dict.fromkeys(("saetools", "n-gram", "MiniLM clusters"), 0)
    for seed in range(seeds):
        a_rows, b_rows = split_halves(len(texts), seed)
        null_items = cluster_items(clean_vectors[a_rows], clean_vectors[b_rows], seed)
        for method, (a, b, threshold) in {
            "saetools": (clean[a_rows], clean[b_rows], "relative"),
            "n-gram": (words[a_rows], words[b_rows], 0.0),
            "MiniLM clusters": (*null_items, 0.0),
        }.items():
            nulls[method] += int(diff_matrices(a, b, threshold=threshold)["significant"].any())
        for prop, plant in properties.items():
            planted_rows, planted_texts = plant_texts(texts, pool, b_rows, plant, seed, max(rates))
            planted_store = saetools.encode(planted_texts, progress=False)
            planted_matrix = planted_store.matrix
            planted_sets = [gram_set(t) for t in planted_texts]
            planted_vectors = minilm_vectors(planted_texts, minilm)
            vocab = gram_vocabulary(clean_sets + planted_sets)
            clean_words = gram_matrix(clean_sets, vocab)
            planted_words = gram_matrix(planted_sets, vocab)
            for rate in rates:
                n_plant = max(1, round(rate * len(b_rows)))
                mask = np.zeros(len(b_rows), bool)
                where = {i: k for k, i in enumerate(planted_rows[:n_plant])}
                mask[list(where)] = True
                b_sae = mixed_b(clean, planted_matrix, b_rows, where)
                b_peaks = mixed_b(clean_peaks, planted_store.peak_starts, b_rows, where)
                b_words = mixed_b(clean_words, planted_words, b_rows, where)
                b_vectors = mixed_b(clean_vectors, planted_vectors, b_rows, where)
                a_items, b_items = cluster_items(clean_vectors[a_rows], b_vectors, seed)
                entry = ranks.setdefault((prop, rate), {m: [] for m in METHODS})
                sae_frame = diff_matrices(clean[a_rows], b_sae)
                entry["saetools"].append(first_hit(sae_frame, b_sae, mask))
                entry[CEILING].append(ceiling_hit(clean[a_rows], b_sae, mask))
                grouping = (clean[a_rows], b_sae, clean_peaks[a_rows], b_peaks, mask)
                entry["saetools properties"].append(
                    grouped_hits(sae_frame, *grouping, GROUP_SIMILARITY)[0]
                )
                for threshold in GROUP_SWEEP:
                    sweep[threshold].append(
                        grouped_hits(sae_frame, *grouping, threshold, top=SWEEP_DEPTH)
                    )
                entry["n-gram"].append(
                    first_hit(
                        diff_matrices(clean_words[a_rows], b_words, threshold=0.0), b_words, mask
                    )
                )
                entry["MiniLM clusters"].append(
                    first_hit(diff_matrices(a_items, b_items, threshold=0.0), b_items, mask)
                )
                entry["MiniLM probe"].append(
                    probe_hit(clean_vectors[a_rows], b_vectors, mask, seed)
                )
        if progress:
            print(f"[{name}] split {seed + 1}/{seeds} done ({time.perf_counter() - start:.0f} s)")
    return CorpusResult(
        name, len(texts), seeds, ranks, nulls, time.perf_counter() - start, tokens_per_doc, sweep
    )


def accuracy(result: CorpusResult) -> dict[str, tuple[int, int, int]]:
    """Per method: (hits at rank 1, hits at rank ≤ 5, cases)."""
    out = {}
    for method in METHODS:
        all_ranks = [r for entry in result.ranks.values() for r in entry[method]]
        out[method] = (
            sum(r == 1 for r in all_ranks),
            sum(1 <= r <= 5 for r in all_ranks),
            len(all_ranks),
        )
    return out


def detection_limits(result: CorpusResult) -> dict[str, dict[str, float]]:
    """Per property and method: the smallest rate found at rank ≤ 5 in every split."""
    limits: dict[str, dict[str, float]] = {}
    for (prop, rate), entry in sorted(result.ranks.items(), key=lambda kv: -kv[0][1]):
        for method, found in entry.items():
            if all(1 <= r <= 5 for r in found):
                limits.setdefault(prop, {})[method] = rate
    return limits


def hit_rate_by_rate(result: CorpusResult) -> dict[str, list[tuple[float, float]]]:
    """Per method: (rate, share of cases found at rank ≤ 5) for every rate."""
    rates = sorted({rate for _, rate in result.ranks})
    out = {}
    for method in METHODS:
        points = []
        for rate in rates:
            found = [
                1 <= r <= 5 for (_, r_), e in result.ranks.items() if r_ == rate for r in e[method]
            ]
            points.append((rate, float(np.mean(found))))
        out[method] = points
    return out


def markdown(result: CorpusResult) -> list[str]:
    """The corpus's section of docs/benchmarks.md."""
    lines = [
        f"### {result.name}: {result.n_docs} documents, {result.seeds} random splits "
        f"({result.seconds / 60:.1f} min; mean {result.tokens_per_doc:.0f} SmolLM2 tokens per "
        "document)",
        "",
        f"Hit rank per split (0 = not in the top 5; {CEILING}: 1 = significant, 0 = not):",
        "",
        "| property | p | " + " | ".join(METHODS) + " |",
        "|---|---|" + "---|" * len(METHODS),
    ]
    for (prop, rate), entry in result.ranks.items():
        cells = " | ".join(" ".join(map(str, entry[m])) for m in METHODS)
        lines.append(f"| {prop} | {rate:.0%} | {cells} |")
    lines += [
        "",
        "| method | acc@1 | acc@5 | null splits with any q < 0.05 |",
        "|---|---|---|---|",
    ]
    for method, (top1, top5, total) in accuracy(result).items():
        null = f"{result.nulls[method]}/{result.seeds}" if method in result.nulls else "n/a"
        lines.append(
            f"| {method} | {top1}/{total} ({top1 / total:.0%}) | "
            f"{top5}/{total} ({top5 / total:.0%}) | {null} |"
        )
    limits = detection_limits(result)
    lines += [
        "",
        "Detection limit (smallest p found at rank ≤ 5 in every split; — = none):",
        "",
        "| property | " + " | ".join(METHODS) + " |",
        "|---|" + "---|" * len(METHODS),
    ]
    for prop in dict.fromkeys(p for p, _ in result.ranks):
        got = limits.get(prop, {})
        cells = " | ".join(f"{got[m]:.0%}" if m in got else "—" for m in METHODS)
        lines.append(f"| {prop} | {cells} |")
    lines += [
        "",
        f"Grouping latents into properties (every case ranked up to {SWEEP_DEPTH} rows deep; rows"
        " read: median rank of the cases found; rows to read: mean number of significant B>A"
        " rows):",
        "",
        f"| rows | acc@1 | acc@5 | found ≤ {SWEEP_DEPTH} | rows read | rows to read |",
        "|---|---|---|---|---|---|",
    ]
    for threshold, found in result.sweep.items():
        ranks = np.array([r for r, _ in found])
        hit = ranks[ranks > 0]
        name = "latents" if threshold is None else f"properties, similarity ≥ {threshold}"
        if threshold == GROUP_SIMILARITY:
            name += " (default)"
        lines.append(
            f"| {name} | {np.mean(ranks == 1):.0%} | {np.mean((ranks >= 1) & (ranks <= 5)):.0%}"
            f" | {len(hit)}/{len(ranks)} | {np.median(hit) if len(hit) else float('nan'):.0f}"
            f" | {np.mean([n for _, n in found]):.0f} |"
        )
    return lines + [""]
