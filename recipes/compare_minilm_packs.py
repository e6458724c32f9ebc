"""Compare two document-embedding SAE packs for the MiniLM reader on the same held-out text.

    python recipes/build_answers_corpus.py --answers OUTPUTS --broad runs/corpus --out runs/answers
    python recipes/train_minilm_sae.py --corpus runs/answers --out runs/minilm-answers-pack
    python recipes/compare_minilm_packs.py --corpus runs/answers \\
        --candidate runs/minilm-answers-pack [--shipped saetools/models/minilm-l6-doc-topk]

Measured for each pack, on the held-out split of the answers corpus (answers to instructions the
training split never saw, and the broad corpus's held-out documents):

* reconstruction: FVU and the share of latents that never fire, per source group;
* planted phrases and apologies at 10% of B (two splits each, per group): whether a significant
  B>A latent separates the planted documents (AUROC ≥ 0.9) within the top five;
* an added topic: B is half BBC openings of one topic and half of others, A only others (each of
  the five topics in turn); the share of the documents where the top three significant B>A
  latents fire that belong to the added topic (the check of ``tests/test_default_pack.py``,
  averaged over topics);
* the shipped labels' detection F1 on each held-out group (the same texts for both packs; the
  median over latents that fire there), beside the median each pack's provenance reports for
  its own held-out text.

Prints one JSON line per pack and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_minilm_sae import RememberingReader, planted_hits  # noqa: E402

import saetools  # noqa: E402
from saetools.evaluation import bbc_documents  # noqa: E402
from saetools.labels import read_label_file  # noqa: E402
from saetools.labels.keywords import detection_scores  # noqa: E402
from saetools.sae.io import load_sae  # noqa: E402
from saetools.sae.packs import DEFAULT_EMBEDDING_SAE_DIR  # noqa: E402
from saetools.sae.train import evaluate_sae  # noqa: E402

TOPICS = ("business", "entertainment", "politics", "sport", "tech")


def held_out(corpus: Path) -> dict[str, list[str]]:
    """Held-out texts of the answers corpus: chat answers and the broad corpus's documents."""
    groups: dict[str, list[str]] = {"answers": [], "broad": []}
    with open(corpus / "valid.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            groups["answers" if row["source"] == "answers" else "broad"].append(row["text"])
    return groups


def added_topic_purity(reader, sae_dir: Path, per_topic: int = 100) -> float:
    """Mean share, over topics and the top three significant B>A latents, of the B documents a
    latent fires on that belong to the added topic."""
    docs = bbc_documents(per_topic * 3, 300, seed=3)
    shares = []
    for topic in TOPICS:
        others = [t for top, t in docs if top != topic]
        added = [t for top, t in docs if top == topic][:per_topic]
        a, b = others[: 2 * per_topic], others[2 * per_topic : 3 * per_topic] + added
        is_added = np.array([False] * per_topic + [True] * len(added))
        frame = saetools.diff(a, b, reader=reader, sae=str(sae_dir), progress=False)
        store_b = saetools.open_store(frame.attrs["store_b"])
        up = frame[(frame["direction"] == "B>A") & frame["significant"]].head(3)
        for latent in up["latent"]:
            fires = store_b.matrix[:, [int(latent)]].toarray().ravel() > 0
            shares.append(float(is_added[fires].mean()) if fires.any() else 0.0)
        shares.extend([0.0] * (3 - len(up)))
    return float(np.mean(shares))


def label_f1(reader, sae_dir: Path, texts: list[str]) -> float:
    """Median detection F1 of the pack's labels on ``texts`` (latents that fire there)."""
    rows = read_label_file(sae_dir / "labels.jsonl")
    labels = {row["latent"]: row["label"] for row in rows if row.get("label")}
    with tempfile.TemporaryDirectory() as folder:
        store = saetools.encode(
            texts, f"{folder}/store", reader=reader, sae=str(sae_dir), progress=False
        )
        scores = detection_scores(store, labels)
    return round(float(scores["f1"].median()), 3)


def measure(name: str, sae_dir: Path, reader, groups: dict[str, list[str]]) -> dict:
    """Every figure of one pack."""
    sae = load_sae(sae_dir)
    row: dict = {"pack": name, "dir": str(sae_dir)}
    for group, texts in groups.items():
        x = torch.from_numpy(reader.embed(texts))
        ev = evaluate_sae(sae, [x], sae.cfg.d_sae)
        hits = planted_hits(reader, sae, texts)
        row[group] = {
            "fvu": round(ev["fvu"], 4),
            "dead": round(ev["dead_fraction"], 4),
            "planted_top5": sum(0 < h["rank"] <= 5 for h in hits),
            "planted_cases": len(hits),
            "label_f1_median": label_f1(reader, sae_dir, texts),
        }
    row["added_topic_purity"] = round(added_topic_purity(reader, sae_dir), 3)
    provenance = json.loads((sae_dir / "provenance.json").read_text())
    row["provenance_label_f1_median"] = provenance["labels"]["detection_f1"]["median"]
    return row


def main() -> None:
    """Run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="answers corpus folder")
    parser.add_argument("--candidate", type=Path, required=True, help="pack folder to compare")
    parser.add_argument("--shipped", type=Path, default=DEFAULT_EMBEDDING_SAE_DIR)
    args = parser.parse_args()
    started = time.time()
    torch.manual_seed(0)
    groups = held_out(args.corpus)
    reader = RememberingReader()
    rows = []
    for name, folder in (("shipped", args.shipped), ("candidate", args.candidate)):
        rows.append(measure(name, folder, reader, groups))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| figure | " + " | ".join(r["pack"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for group in groups:
        for key in ("fvu", "dead", "planted_top5", "label_f1_median"):
            cells = [str(r[group][key]) for r in rows]
            print(f"| held-out {group}: {key} | " + " | ".join(cells) + " |")
    for key in ("added_topic_purity", "provenance_label_f1_median"):
        print(f"| {key} | " + " | ".join(str(r[key]) for r in rows) + " |")
    print(f"\ndone in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
