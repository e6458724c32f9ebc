"""The evaluation suite in one command; prints the tables and writes docs/benchmarks.md.

    python -m benchmarks.quality                    # ~40 min on 2 CPU cores, no LLM
    python -m benchmarks.quality --llm local        # ~45 min: + LLM baselines, `saetools serve`
    python -m benchmarks.quality --llm http://127.0.0.1:8008/v1
    python -m benchmarks.quality --quick --out /tmp/b.md   # small sizes, a smoke run
    python -m benchmarks.quality --parts short,long --sae saetools/models/NAME  # a candidate

Parts: planted differences on short and long documents (saetools vs n-gram diff vs MiniLM
clusters vs a MiniLM probe), retrieval (saetools search vs BM25 vs MiniLM cosine), label
fidelity (SAE latents vs PCA / ICA directions), clustering (untargeted by topic vs MiniLM
k-means; targeted by planted tones), steering search (SAE steering vs query rewriting: precision
against fidelity), on request (``--parts apologies``) search on planted
apologies, and with ``--llm`` an LLM-only proposer and saetools + LLM
hypotheses with their token costs. Plots go to docs/img/.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.quality import (
    clustering,
    fidelity,
    llm_proposer,
    planted_diff,
    real_pairs,
    retrieval,
    search_apologies,
    steering,
    svg,
)
from saetools.evaluation import long_documents, short_documents

PARTS = ("short", "long", "retrieval", "fidelity", "clustering", "steering", "real")
EXTRA_PARTS = ("apologies",)  # search on planted apologies; run on request


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {', '.join(PARTS + EXTRA_PARTS)} (default: all but the last)",
    )
    parser.add_argument("--seeds", type=int, default=2, help="random splits per corpus")
    # 600 documents per side: the fewest at which a property in 3% of B (18 documents) can be
    # significant at all among 4,608 latents; BBC has openings for at most 1,540 short and
    # articles of the long length for at most 1,140 long documents
    parser.add_argument("--short-docs", type=int, default=1200)
    parser.add_argument("--long-docs", type=int, default=600)
    parser.add_argument(
        "--llm", default=None, help="'local' (start `saetools serve`) or a base URL; off by default"
    )
    parser.add_argument("--llm-seeds", type=int, default=1)
    parser.add_argument("--llm-rates", default="0.3", help="comma-separated planting rates")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--sae",
        default=None,
        help="a SmolLM2 SAE folder to measure in place of the shipped default (a candidate pack)",
    )
    parser.add_argument(
        "--out", default=None, help="page to write (default: docs/benchmarks.md for a full run)"
    )
    parser.add_argument(
        "--plots", default=None, help="folder for the SVG plots (default: docs/img, full run)"
    )
    return parser.parse_args()


CANDIDATES_HEADING = "## Other packs"
"""A hand-kept section of docs/benchmarks.md (figures of runs with ``--sae``: earlier default
packs and candidates, beside the default's): a new run of the page carries it over unchanged."""


def kept_section(page: Path | None, heading: str) -> list[str]:
    """The lines of the section under ``heading`` in an existing ``page`` (up to the next
    second-level heading), or none."""
    if page is None or not page.exists():
        return []
    lines = page.read_text(encoding="utf-8").splitlines()
    if heading not in lines:
        return []
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def summary_table(results: dict, command: str, minutes: float) -> list[str]:
    """The short table at the top of the page (and of the README)."""
    lines = [
        "## Summary",
        "",
        f"`{command}` — {minutes:.0f} min on {os.cpu_count()} CPU cores.",
        "",
        "| benchmark | saetools | baselines |",
        "|---|---|---|",
    ]
    for key, title in (("short", "short"), ("long", "long")):
        if key in results:
            acc = planted_diff.accuracy(results[key])
            cases = acc["saetools"][2]

            def pct(m, acc=acc, cases=cases):
                return f"{acc[m][1] / cases:.0%}"

            others = ", ".join(f"{m} {pct(m)}" for m in planted_diff.BASELINES)
            lines.append(
                f"| planted differences, {title} documents: acc@5 over {cases} cases | "
                f"latents {pct('saetools')}, properties {pct('saetools properties')} | {others} |"
            )
    if "retrieval" in results:
        rows = results["retrieval"].scores
        for kind in dict.fromkeys(k for k, _ in rows):
            means = {
                m: sum(r[m][0] for (k, _), r in rows.items() if k == kind)
                / sum(1 for k, _ in rows if k == kind)
                for m in retrieval.METHODS
            }
            others = ", ".join(f"{m} {means[m]:.2f}" for m in retrieval.METHODS[1:])
            lines.append(f"| retrieval, {kind}: mean AP | {means['saetools']:.2f} | {others} |")
    if "fidelity" in results:
        rows = results["fidelity"].rows
        others = ", ".join(
            f"{r['method'].replace(' directions', '')} {r['mean']:.2f}" for r in rows[1:]
        )
        lines.append(f"| label fidelity: mean detection F1 | {rows[0]['mean']:.2f} | {others} |")
        others = ", ".join(
            f"{r['method'].replace(' directions', '')} {r['chosen_median']:.2f}" for r in rows[1:]
        )
        lines.append(
            f"| label fidelity, chosen labels (peak tokens or keywords): median detection F1 | "
            f"{rows[0]['chosen_median']:.2f} | {others} |"
        )
        others = ", ".join(
            f"{r['method'].replace(' directions', '')} {r['chosen_accuracy_median']:.2f}"
            for r in rows[1:]
        )
        lines.append(
            f"| label fidelity, chosen labels: median detection balanced accuracy (0.5: chance) | "
            f"{rows[0]['chosen_accuracy_median']:.2f} | {others} |"
        )
    if "real" in results:
        known = [k for r in results["real"] for k in r.known]
        found, found_line = (sum(k[key] is not None for k in known) for key in real_pairs.RANKS)
        lines.append(
            f"| real pairs (AlpacaEval): known differences named in the top "
            f"{real_pairs.TOP} | {found} of {len(known)} (peak inside the marker), {found_line}"
            f" of {len(known)} (or on the line break opening it) | |"
        )
    if "clustering" in results:
        topics = results["clustering"].topics
        lines.append(
            f"| clustering BBC openings by topic, all latents: ARI | {topics[-2][1]} | "
            f"{topics[-1][0]} {topics[-1][1]} |"
        )
        tone = results["clustering"].tones
        lines.append(
            f"| clustering planted tones, k 2: ARI | `apology` + `enthusiasm` {tone[0][3]}, "
            f"`tone` {tone[-2][3]} | |"
        )
    if "steering" in results:
        means = results["steering"].means()
        rewrite = next(m for m in means if m[0] == "rewrite (label words)")
        cells = []
        for name in ("SAE direct", "SAE iterative"):
            near = min((m for m in means if m[0] == name), key=lambda m: abs(m[3] - rewrite[3]))
            cells.append(f"{name} {near[1]}: {near[2]:.2f} (fidelity {near[3]:.2f})")
        lines.append(
            "| steering search towards a feature: top-10 precision | "
            f"{', '.join(cells)} | rewrite {rewrite[1]}: {rewrite[2]:.2f} "
            f"(fidelity {rewrite[3]:.2f}) |"
        )
    if "llm" in results:
        res = results["llm"]
        found = {m: 0 for m in llm_proposer.METHODS}
        total = 0
        for entry in res.ranks.values():
            total += len(entry["LLM only"])
            for m in found:
                found[m] += sum(1 <= r <= 5 for r in entry[m])
        tokens = {m: sum(res.tokens[m][1:]) / max(total, 1) for m in found}
        lines.append(
            f"| LLM ({res.model}): named in 5 hypotheses, tokens per case | "
            f"saetools → LLM {found['saetools → LLM']}/{total}, "
            f"{tokens['saetools → LLM']:,.0f} | LLM only {found['LLM only']}/{total}, "
            f"{tokens['LLM only']:,.0f} |"
        )
    return lines + [""]


def main() -> None:
    """Run the chosen parts; print and write the page."""
    from saetools.readers.embedding import EmbeddingReader

    args = parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.sae:  # every part that reads with the default reader now gets this SAE
        from saetools.sae import packs

        packs.DEFAULT_SAE_DIR = Path(args.sae).resolve()
    if args.quick:
        args.short_docs, args.long_docs, args.seeds = 200, 60, 1
    start = time.perf_counter()
    minilm = EmbeddingReader()
    results: dict = {}
    sections: list[str] = []
    full = set(parts) >= set(PARTS)  # only a full run replaces the page in docs/
    args.out = args.out or ("docs/benchmarks.md" if full else None)
    plots = Path(args.plots or ("docs/img" if full else tempfile.mkdtemp()))
    plots.mkdir(parents=True, exist_ok=True)
    for key, loader, n in (
        ("short", short_documents, args.short_docs),
        ("long", long_documents, args.long_docs),
    ):
        if key not in parts:
            continue
        texts, pool = loader(n)
        name = f"{key} documents"
        result = planted_diff.run_corpus(name, texts, pool, seeds=args.seeds, minilm=minilm)
        results[key] = result
        sections += planted_diff.markdown(result)
        chart = svg.line_chart(
            planted_diff.hit_rate_by_rate(result),
            f"Planted property found at rank ≤ 5 ({name})",
            "share of B planted",
            "cases found",
        )
        (plots / f"planted-{key}.svg").write_text(chart)
        sections += [f"![hit rate by planting rate, {name}](img/planted-{key}.svg)", ""]
        print("\n".join(planted_diff.markdown(result)))
    client_url, server = None, None
    if args.llm:
        client_url = args.llm
        if args.llm == "local":
            from saetools.llm.server import start_server

            server, client_url = start_server()
    try:
        if "retrieval" in parts:
            llm = None
            if client_url:
                from saetools.llm import LLMClient

                llm = LLMClient(client_url, use_cache=False, timeout=300)
            result = retrieval.run_retrieval(
                200 if args.quick else 600, llm=llm, rerank=10 if llm else 0
            )
            results["retrieval"] = result
            sections += retrieval.markdown(result)
            print("\n".join(retrieval.markdown(result)))
        if "fidelity" in parts:
            sizes = (300, 100) if args.quick else (1500, 400)
            result = fidelity.run_fidelity(*sizes)
            results["fidelity"] = result
            sections += fidelity.markdown(result)
            chart = svg.bar_chart(
                {
                    r["method"].replace(" directions", "").replace(" (shipped,", " ("): r["mean"]
                    for r in result.rows
                },
                "Mean detection F1 of keyword labels",
                "F1",
            )
            (plots / "fidelity.svg").write_text(chart)
            sections += ["![mean detection F1](img/fidelity.svg)", ""]
            print("\n".join(fidelity.markdown(result)))
        if "apologies" in parts:
            result = search_apologies.run_apologies(
                1 if args.quick else 4, 200 if args.quick else 600
            )
            sections += search_apologies.markdown(result)
            print("\n".join(search_apologies.markdown(result)))
        if "real" in parts:
            result = real_pairs.run_real_pairs(80 if args.quick else 200)
            results["real"] = result
            sections += real_pairs.markdown(result)
            print("\n".join(real_pairs.markdown(result)))
        if "clustering" in parts:
            result = clustering.run_clustering(60 if args.quick else 200, minilm=minilm)
            results["clustering"] = result
            sections += clustering.markdown(result)
            print("\n".join(clustering.markdown(result)))
        if "steering" in parts:
            llm = None
            if client_url:
                from saetools.llm import LLMClient

                llm = LLMClient(client_url, use_cache=False, timeout=300)
            result = steering.run_steering(
                40 if args.quick else 100, 10 if args.quick else 40, llm=llm
            )
            results["steering"] = result
            sections += steering.markdown(result)
            series = steering.chart_series(result)
            low = min(x for points in series.values() for x, _ in points)
            chart = svg.xy_chart(
                series,
                "Share of the top 10 with the asked-for feature",
                "fidelity cos(query, moved query)",
                "precision",
                (max(0.0, low - 0.05), 1.0),
            )
            (plots / "steering.svg").write_text(chart)
            sections += ["![precision against fidelity](img/steering.svg)", ""]
            print("\n".join(steering.markdown(result)))
        if client_url:
            texts, pool = short_documents(args.short_docs)
            rates = tuple(float(r) for r in args.llm_rates.split(","))
            result = llm_proposer.run_llm(
                texts, pool, client_url, minilm, seeds=args.llm_seeds, rates=rates
            )
            results["llm"] = result
            sections += llm_proposer.markdown(result)
            print("\n".join(llm_proposer.markdown(result)))
    finally:
        if server is not None:
            server.terminate()
    minutes = (time.perf_counter() - start) / 60
    command = "python -m benchmarks.quality" + (" --quick" if args.quick else "")
    command += "" if full else f" --parts {','.join(parts)}"
    command += f" --sae {args.sae}" if args.sae else ""
    command += f" --llm {args.llm}" if args.llm else ""
    page = [
        "# Benchmarks: does saetools find what is there, against what a user could do instead?",
        "",
        "Written by `python -m benchmarks.quality`; every number below comes from "
        "the last run. Method and definitions: the docstrings of `benchmarks/quality/*.py`, "
        "summarised under each table.",
        "",
        *summary_table(results, command, minutes),
        *kept_section(Path(args.out) if args.out else None, CANDIDATES_HEADING),
        "## Planted differences",
        "",
        planted_diff.__doc__.strip().split("\n\n", 1)[1],
        "",
        *sections,
    ]
    text = "\n".join(page)
    if args.out is None:
        print("\n".join(summary_table(results, command, minutes)))
        print(f"(a subset of the parts: docs/benchmarks.md left as it is; {minutes:.1f} min)")
        return
    Path(args.out).write_text(text)
    print("\n".join(summary_table(results, command, minutes)))
    print(f"wrote {args.out} ({minutes:.1f} min)")


if __name__ == "__main__":
    main()
