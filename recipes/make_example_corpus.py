"""Build examples/corpus.jsonl: docstrings of the Python standard library (PSF licence).

Real English prose that exists on every machine with Python, so the quickstart needs no download.
Deterministic: modules and objects are visited in sorted order; exact duplicates are dropped.

    python recipes/make_example_corpus.py [--out examples/corpus.jsonl] [--max-docs 1500]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
import warnings
from pathlib import Path

MODULES = sorted(
    m
    for m in sys.stdlib_module_names
    if not m.startswith("_")
    and m
    not in {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3"}
)


def clean(doc: str) -> str:
    """Collapse whitespace inside paragraphs; keep paragraph breaks."""
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", doc)]
    return "\n\n".join(p for p in paragraphs if p)


def docstrings():
    """Yield (qualified name, docstring) for modules, classes and functions, sorted."""
    warnings.simplefilter("ignore")
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - platform-specific modules fail to import
            continue
        if module.__doc__:
            yield name, module.__doc__
        for attr in sorted(vars(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(
                obj, "__module__", None
            ) == name:
                if obj.__doc__:
                    yield f"{name}.{attr}", obj.__doc__


def main() -> None:
    """Write the corpus."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="examples/corpus.jsonl")
    parser.add_argument("--max-docs", type=int, default=1500)
    parser.add_argument("--min-chars", type=int, default=160)
    parser.add_argument("--max-chars", type=int, default=2400)
    args = parser.parse_args()
    seen, rows = set(), []
    for qualname, doc in docstrings():
        text = clean(doc)
        if not args.min_chars <= len(text) <= args.max_chars or text in seen:
            continue
        seen.add(text)
        rows.append({"id": qualname, "module": qualname.split(".")[0], "text": text})
    step = max(1, len(rows) // args.max_docs)
    rows = rows[::step][: args.max_docs]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} documents to {out}")


if __name__ == "__main__":
    main()
