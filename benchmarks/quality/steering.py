"""Is steering precise? SAE feature steering against query rewriting, after the intervention
experiment of "Steering semantic search with interpretable features from sparse autoencoders".

    python -m benchmarks.quality --parts steering [--llm local]

Documents: BBC news openings (title and first sentences), 100 per topic, in a MiniLM store
(the shipped document-embedding SAE). Queries: titles of other BBC articles. For each query,
its top 10 documents R by cosine similarity are found, and a target feature j is drawn at
random among the labelled latents that are active in 2-20% of the documents and in none of R
nor in the query. The query is then moved towards j by

* SAE steering, direct and iterative (`saetools search --steer j=+δ`), δ in ``DELTAS``;
* query rewriting: the label's words appended to the query 1, 2 or 3 times (offline);
* an LLM rewrite (with ``--llm``): the model is asked to rewrite the query so that it also asks
  for the label's property.

Measured, averaged over (query, feature) pairs: **precision**, the share of the new top 10 in
which j is active (the feature the user asked for is what the results have), and **fidelity**,
cos(x, x') between the original and the moved query embedding (how much of the query is
left). For the SAE methods also **reached**: whether the moved query, encoded again, has j at
half its target activation or more. A method is better when it reaches higher precision at the
same fidelity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

DELTAS = (1.0, 2.0, 4.0, 8.0, 16.0)
REWRITES = (1, 2, 3)
TOP = 10
LLM_PROMPT = (
    "Rewrite this search query so that the results are also about: {label}.\n"
    "Query: {query}\nReply with the new query only, on one line."
)


@dataclass
class SteeringResult:
    """Per method and strength, the (precision, fidelity) of every (query, feature) pair."""

    docs: int
    pairs: int
    points: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    llm: str | None = None

    def add(
        self, method: str, strength: str, precision: float, fidelity: float, reached=np.nan
    ) -> None:
        """Record one pair's outcome (``reached``: SAE methods only)."""
        self.points.setdefault((method, strength), []).append((precision, fidelity, reached))

    def means(self) -> list[tuple[str, str, float, float, float]]:
        """``(method, strength, mean precision, mean fidelity, share reached)`` in insertion
        order (share reached: NaN for the rewrites)."""
        out = []
        for (m, s), v in self.points.items():
            values = np.array(v, dtype=np.float64)
            reached = values[:, 2]
            share = float(np.mean(reached)) if not np.isnan(reached).any() else np.nan
            out.append((m, s, float(values[:, 0].mean()), float(values[:, 1].mean()), share))
        return out


def _corpus(per_topic: int, queries: int, seed: int):
    """Openings of ``per_topic`` articles per topic for the store, and the titles (first lines)
    of other articles as queries."""
    from saetools.evaluation import TOPICS, bbc_folder, opening

    rng = random.Random(seed)
    docs, titles = [], []
    for topic in TOPICS:
        files = sorted((bbc_folder() / topic).glob("*.txt"))
        rng.shuffle(files)
        raw = [p.read_bytes().decode("utf-8", errors="replace") for p in files]
        docs += [opening(text, 300) for text in raw[:per_topic]]
        held = raw[per_topic : per_topic + queries // len(TOPICS) + 1]
        titles += [text.strip().splitlines()[0].strip() for text in held]
    rng.shuffle(docs)
    rng.shuffle(titles)
    return docs, titles[:queries]


def _precision(store, rows: np.ndarray, latent: int) -> float:
    return float((store.matrix[rows, latent].toarray().ravel() > 0).mean())


def run_steering(
    per_topic: int = 100, queries: int = 40, seed: int = 0, llm=None
) -> SteeringResult:
    """Run the experiment (``llm``: an :class:`saetools.llm.LLMClient` for the LLM rewrite)."""
    import tempfile

    import saetools
    from saetools.analyses.steer import steer_embedding, steered_search_of_store
    from saetools.labels import label_scores_of_store

    docs, query_texts = _corpus(per_topic, queries, seed)
    folder = tempfile.mkdtemp(prefix="steering-")
    store = saetools.encode(docs, out=f"{folder}/store", reader="minilm", progress=False)
    search = steered_search_of_store(store, device="cpu")
    active = store.matrix > 0
    freq = np.asarray(active.mean(axis=0)).ravel()
    scores = label_scores_of_store(store)
    labelled = np.array(
        [bool(search.labels.get(j)) and scores.get(j, 1.0) > 0 for j in range(store.d_sae)]
    )
    candidates = np.flatnonzero(labelled & (freq >= 0.02) & (freq <= 0.2))
    rng = np.random.default_rng(seed)
    result = SteeringResult(len(docs), 0, llm=getattr(llm, "model", None))
    for query in query_texts:
        x = search.embed(query)
        base = steer_embedding(search.sae, x, {})
        rows = np.argsort(-(search.embeddings @ base.original), kind="stable")[:TOP]
        seen = np.asarray(active[rows].sum(axis=0)).ravel() > 0
        pool = [j for j in candidates if not seen[j] and base.before[j] == 0]
        if not pool:
            continue
        j = int(rng.choice(pool))
        label = search.labels[j]
        result.pairs += 1
        result.add("unsteered", "", _precision(store, rows, j), 1.0)
        for method in ("direct", "iterative"):
            for delta in DELTAS:
                edit = steer_embedding(search.sae, x, {j: delta * search.scale[j]}, method=method)
                top = np.argsort(-(search.embeddings @ edit.steered), kind="stable")[:TOP]
                reached = float(edit.achieved[j] >= 0.5 * edit.target[j])
                result.add(
                    f"SAE {method}",
                    f"δ {delta:g}",
                    _precision(store, top, j),
                    edit.fidelity,
                    reached,
                )
        rewrites = [(f"label ×{r}", " ".join([query] + [label] * r)) for r in REWRITES]
        if llm is not None:
            prompt = LLM_PROMPT.format(label=label, query=query)
            reply = llm.complete([{"role": "user", "content": prompt}], max_tokens=40).text or ""
            rewrites.append(("LLM", (reply.strip().splitlines() or [query])[0]))
        for strength, text in rewrites:
            y = search.embed(text)
            y = y / max(float(np.linalg.norm(y)), 1e-12)
            top = np.argsort(-(search.embeddings @ y), kind="stable")[:TOP]
            method = "LLM rewrite" if strength == "LLM" else "rewrite (label words)"
            result.add(method, strength, _precision(store, top, j), float(base.original @ y))
    return result


def markdown(result: SteeringResult) -> list[str]:
    """The table and how to read it."""
    lines = [
        "## Steering search: precision against fidelity",
        "",
        f"{result.docs} BBC news openings in a MiniLM store (shipped document SAE); "
        f"{result.pairs} (query, feature) pairs, the feature active in none of the query's "
        f"top {TOP}. Precision: share of the new top {TOP} where the feature is active. "
        "Fidelity: cos(query, moved query)."
        + (f" LLM rewrite by {result.llm}." if result.llm else " No LLM rewrite (no --llm)."),
        "",
        "Reached: share of pairs whose moved query, encoded again, has the feature at half its "
        "target activation or more.",
        "",
        "| method | strength | precision | fidelity | reached |",
        "|---|---|---|---|---|",
    ]
    for method, strength, precision, fidelity, reached in result.means():
        cell = "" if np.isnan(reached) else f"{reached:.0%}"
        lines.append(f"| {method} | {strength} | {precision:.2f} | {fidelity:.3f} | {cell} |")
    return lines + [""]


def chart_series(result: SteeringResult) -> dict[str, list[tuple[float, float]]]:
    """(fidelity, precision) curves per method, for :func:`benchmarks.quality.svg.xy_chart`."""
    series: dict[str, list[tuple[float, float]]] = {}
    for method, _, precision, fidelity, _ in result.means():
        if method != "unsteered":
            series.setdefault(method, []).append((fidelity, precision))
    return series
