"""A real A/B pair from the AlpacaEval outputs (../shared/corpora/alpaca-eval): the top
properties of a diff, printed with their members and examples, for reading by eye.

    python -m benchmarks.quality.real_pair Meta-Llama-3-8B-Instruct Mistral-7B-Instruct-v0.2

Both models answer the same instructions (the first ``--n``), each answer cut at
``--max-tokens`` tokens. Prints, per direction, the first ``--top`` properties and, for
comparison, how many rows the per-latent diff has.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "alpaca-eval"


def answers(model: str, n: int) -> list[str]:
    """The answers of ``model`` to the first ``n`` instructions, in instruction order."""
    found: dict[int, str] = {}
    with gzip.open(CORPUS / "outputs.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if row["model"] == model and row["instruction_idx"] < n:
                found[row["instruction_idx"]] = row["text"]
    if not found:
        raise SystemExit(f"no answers of {model} in {CORPUS}")
    return [found[i] for i in sorted(found)]


def main() -> None:
    """Diff the two models' answers and print the top properties."""
    import saetools
    from saetools.text import shorten, snippet

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    a, b = answers(args.model_a, args.n), answers(args.model_b, args.n)
    options = {"max_tokens_per_doc": args.max_tokens, "progress": False}
    latents = saetools.diff(a, b, by="latent", **options)
    frame = saetools.diff(a, b, **options)
    for direction in ("B>A", "A>B"):
        rows = frame[(frame["direction"] == direction) & frame["significant"]]
        lat = latents[(latents["direction"] == direction) & latents["significant"]]
        print(f"\n== {direction}: {len(rows)} properties from {len(lat)} latents ==")
        for rank, row in enumerate(rows.head(args.top).itertuples(), start=1):
            print(
                f"{rank:>2}. [{row.latent}] {shorten(row.label, 50)}  size {row.size}  "
                f"A {row.freq_a:.0%} B {row.freq_b:.0%}"
            )
            if row.size > 1:
                print("    members: " + shorten(" | ".join(row.member_labels[1:]), 150))
            side = row.examples_b if direction == "B>A" else row.examples_a
            for item in side[:2]:
                text = snippet(item["text"], item["start"], item["end"], 50, also=item["spans"])
                print("    e.g. " + shorten(text, 150))
        print(f"-- the first {args.top} rows without grouping (latent, label, its property) --")
        first = {int(j): g for g, members in enumerate(rows["members"]) for j in members}
        for rank, row in enumerate(lat.head(args.top).itertuples(), start=1):
            print(
                f"{rank:>2}. [{row.latent}] {shorten(row.label, 50)}  A {row.freq_a:.0%} "
                f"B {row.freq_b:.0%}  -> property {first.get(int(row.latent), -1) + 1}"
            )


if __name__ == "__main__":
    main()
