"""Train, label and package the default SAE shipped with saetools (seeded; rerun reproduces it).

    python recipes/build_training_corpus.py --wheels WHEELS --out runs/corpus
    python recipes/train_default_sae.py --corpus runs/corpus --layer 15 --latents 4608 --k 32

Steps: harvest SmolLM2-135M activations over the training split; train a TopK SAE; encode a
labelling subset of the training split and the held-out split into stores; write keyword labels
from the labelling store; score them (detection F1) on the held-out store; copy the SAE (bf16),
labels and a provenance file into saetools/models/<name>/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from saetools import __version__
from saetools.api import encode
from saetools.labels.keywords import (
    attach_scores,
    detection_scores,
    keyword_labels,
    write_labels,
)
from saetools.readers import load_reader
from saetools.sae.activations import harvest
from saetools.sae.evaluate import loss_recovered
from saetools.sae.io import save_sae
from saetools.sae.train import TrainConfig, Trainer

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "saetools" / "models"


def read(path: Path) -> list[str]:
    """Texts of a corpus split."""
    with open(path) as fh:
        return [json.loads(line)["text"] for line in fh]


def main() -> None:
    """Run the recipe."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus"))
    parser.add_argument("--work", type=Path, default=Path("runs/default"))
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--latents", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--label-docs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument(
        "--target", type=Path, default=None, help="write the pack here (default: in the package)"
    )
    args = parser.parse_args()
    name = args.name or f"smollm2-135m-l{args.layer}-topk"
    started = time.time()
    train, valid = read(args.corpus / "train.jsonl"), read(args.corpus / "valid.jsonl")
    reader = load_reader(None, args.layer, quiet=True)
    cache = harvest(reader, train, args.work / "activations", progress=True)
    cfg = TrainConfig(latents=args.latents, k=args.k, epochs=args.epochs, seed=args.seed)
    sae_dir = args.work / "sae"
    result = Trainer(cfg, cache, sae_dir, reader_info=reader.describe()).train(resume=True)
    print(f"trained: FVU {result.fvu:.3f}, L0 {result.l0:.1f}, dead {result.dead_fraction:.1%}")
    ce = loss_recovered(reader, result.sae, valid[:200], max_tokens=128)
    label_store = encode(
        train[: args.label_docs],
        args.work / "store-label",
        reader=reader,
        sae=sae_dir,
        progress=True,
    )
    valid_store = encode(
        valid, args.work / "store-valid", reader=reader, sae=sae_dir, progress=True
    )
    rows = keyword_labels(label_store)
    scores = detection_scores(valid_store, {r["latent"]: r["label"] for r in rows})
    label_summary = attach_scores(rows, scores, args.label_docs)
    target = args.target or PACKAGE_MODELS / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    sae = result.sae
    sae.cfg.extra["training"]["loss_recovered"] = ce
    save_sae(sae, target, dtype=torch.bfloat16)
    write_labels(rows, target)
    stats = json.loads((args.corpus / "stats.json").read_text())
    provenance = {
        "name": name,
        "saetools_version": __version__,
        "reader": reader.describe(),
        "training": {**sae.cfg.extra["training"], "corpus": stats},
        "labels": label_summary,
        "recipe": "recipes/build_training_corpus.py + recipes/train_default_sae.py",
    }
    (target / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(json.dumps(provenance, indent=1))
    print(f"done in {time.time() - started:.0f} s")  # not in provenance: reruns stay identical


if __name__ == "__main__":
    main()
