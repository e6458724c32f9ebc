"""Label fidelity (after arXiv:2309.08600): are SAE latents easier to label than PCA or ICA?

The same activations (SmolLM2-135M layer 15 on BBC News openings) are encoded three ways, each
into a sparse code with the same sparsity (the 32 largest activations per token):

- ``SAE``: the shipped TopK SAE (4,608 latents);
- ``PCA``: all 576 principal directions, each split into a positive and a negative feature
  (1,152), activation = the token's projection in standard deviations, kept when positive;
- ``ICA``: FastICA with 288 components, split and scaled the same way (576 features).

Every feature then goes through exactly the shipped pipeline: documents are max-pooled into a
store, keyword labels are written from the top-activating windows of a labelling set
(:func:`saetools.labels.keywords.keyword_labels`) and scored on held-out documents by detection
F1 (:func:`saetools.labels.keywords.detection_scores`: does a window contain a label term,
around the feature's peak vs in documents where it is absent?). The pack's labels are then
chosen as the shipped recipe chooses them (:func:`saetools.labels.peaks.choose_labels`): per
feature, the peak-token label or the keyword label, whichever detects better on one half of the
held-out documents, scored on the other half ("chosen" columns).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from typing import NamedTuple

import numpy as np
import torch

from saetools.evaluation import bbc_documents

SPARSITY = 32
ICA_COMPONENTS = 288
FIT_TOKENS = 60_000


class FidelityResult(NamedTuple):
    """Detection-F1 summaries per method and the run's size."""

    rows: list[dict]
    label_docs: int
    heldout_docs: int
    seconds: float


def direction_sae(
    directions: np.ndarray, mean: np.ndarray, std: np.ndarray, reader_info: dict, k: int
):
    """A TopK "SAE" (``k`` per token) whose features are ±directions (rows of ``directions``),
    each projection divided by its standard deviation ``std``."""
    from saetools.sae.models import SAEConfig, build_sae

    d, d_in = directions.shape
    cfg = SAEConfig(architecture="topk", d_in=d_in, d_sae=2 * d, k=k, reader=reader_info)
    sae = build_sae(cfg)
    scaled = directions / std[:, None]
    with torch.no_grad():
        sae.W_enc.copy_(torch.from_numpy(np.vstack([scaled, -scaled]).T.astype(np.float32)))
        sae.b_enc.zero_()
        sae.b_dec.copy_(torch.from_numpy(mean.astype(np.float32)))
        unit = np.vstack([directions, -directions])
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        sae.W_dec.copy_(torch.from_numpy(unit.astype(np.float32)))
    return sae


def summary(name: str, n_features: int, scores, density: float) -> dict:
    """Distribution of detection F1 over the scored features (``density``: mean share of
    held-out documents in which a feature is active)."""
    f1 = scores["f1"].to_numpy() if len(scores) else np.zeros(0)
    return {
        "method": name,
        "features": n_features,
        "scored": len(f1),
        "p25": float(np.quantile(f1, 0.25)) if len(f1) else float("nan"),
        "median": float(np.median(f1)) if len(f1) else float("nan"),
        "p75": float(np.quantile(f1, 0.75)) if len(f1) else float("nan"),
        "mean": float(f1.mean()) if len(f1) else float("nan"),
        "share_f1_0.5": float((f1 >= 0.5).mean()) if len(f1) else float("nan"),
        "accuracy_median": median_of(scores, "balanced_accuracy"),
        "density": density,
    }


def median_of(scores, column: str) -> float:
    """Median of a column of detection scores (NaN when none was scored)."""
    return float(np.median(scores[column].to_numpy())) if len(scores) else float("nan")


def run_fidelity(
    label_docs: int = 1500, heldout_docs: int = 400, progress: bool = True
) -> FidelityResult:
    """Fit PCA and ICA on the labelling set's activations; label and score all three."""
    from sklearn.decomposition import PCA, FastICA

    import saetools
    from saetools.labels.keywords import detection_scores, keyword_labels
    from saetools.labels.peaks import choose_labels, covering_peak_labels, peak_token_labels
    from saetools.readers import load_reader
    from saetools.sae.activations import harvest
    from saetools.sae.packs import resolve_sae

    start = time.perf_counter()
    per_topic = (label_docs + heldout_docs) // 5 + 1
    texts = [t for _, t in bbc_documents(per_topic, 300, seed=21)]
    label_texts, heldout_texts = texts[:label_docs], texts[label_docs : label_docs + heldout_docs]
    reader = load_reader(None, quiet=True)
    sae, _ = resolve_sae(None)
    with tempfile.TemporaryDirectory() as tmp:
        cache = harvest(reader, label_texts, f"{tmp}/activations", progress=progress)
        x = cache.sample(min(FIT_TOKENS, cache.n_tokens), seed=0).float().numpy()
    mean = x.mean(axis=0)
    pca = PCA(random_state=0).fit(x)
    pca_std = np.sqrt(pca.explained_variance_)
    with warnings.catch_warnings():  # FastICA may stop at max_iter; the components still serve
        warnings.simplefilter("ignore")
        ica = FastICA(ICA_COMPONENTS, random_state=0, max_iter=400, whiten="unit-variance")
        ica.fit(x)
    ica_dirs = ica.components_
    ica_std = ((x - ica.mean_) @ ica_dirs.T).std(axis=0)
    info = reader.describe()
    encoders = {"SAE (shipped, TopK 32)": sae}
    for name, dirs, centre, std in (
        ("PCA", pca.components_, mean, pca_std),
        ("ICA", ica_dirs, ica.mean_, ica_std),
    ):
        # same sparsity per token, and same firing rate per feature as the SAE's latents
        matched = max(1, round(SPARSITY * 2 * len(dirs) / sae.cfg.d_sae))
        for k, how in ((SPARSITY, f"TopK {SPARSITY}"), (matched, f"TopK {matched}")):
            encoders[f"{name} directions ({how})"] = direction_sae(dirs, centre, std, info, k)
    rows = []
    for name, encoder in encoders.items():
        label_store = saetools.encode(label_texts, sae=encoder, reader=reader, progress=progress)
        heldout = saetools.encode(heldout_texts, sae=encoder, reader=reader, progress=progress)
        half = len(heldout_texts) // 2
        select = saetools.encode(heldout_texts[:half], sae=encoder, reader=reader, progress=False)
        score = saetools.encode(heldout_texts[half:], sae=encoder, reader=reader, progress=False)
        keywords = keyword_labels(label_store)
        labels = {r["latent"]: r["label"] for r in keywords}
        scores = detection_scores(heldout, labels)
        active = np.diff(heldout.matrix.tocsc().indptr) / len(heldout_texts)
        rows.append(summary(name, encoder.cfg.d_sae, scores, float(active[active > 0].mean())))
        candidates = {
            "peak-tokens": peak_token_labels(label_store),
            "peak-cover": covering_peak_labels(label_store),
            "keywords": keywords,
        }
        chosen, _ = choose_labels(candidates, select, score)
        f1 = np.array([r["score"] for r in chosen if "score" in r])
        accuracy = np.array([r["score_balanced_accuracy"] for r in chosen if "score" in r])
        rows[-1]["chosen_median"] = float(np.median(f1)) if len(f1) else float("nan")
        rows[-1]["chosen_mean"] = float(f1.mean()) if len(f1) else float("nan")
        rows[-1]["chosen_accuracy_median"] = (
            float(np.median(accuracy)) if len(accuracy) else float("nan")
        )
        rows[-1]["chosen_peak_share"] = float(
            np.mean([r["source"] != "keywords" for r in chosen]) if chosen else float("nan")
        )
        if progress:
            print(
                f"[fidelity] {name}: median F1 keywords {rows[-1]['median']:.2f}, "
                f"chosen {rows[-1]['chosen_median']:.2f}"
            )
    return FidelityResult(rows, label_docs, heldout_docs, time.perf_counter() - start)


def markdown(result: FidelityResult) -> list[str]:
    """The label-fidelity section of docs/benchmarks.md."""
    lines = [
        f"## Label fidelity: SAE latents vs PCA and ICA directions ({result.seconds / 60:.1f} min)",
        "",
        f"Keyword labels from {result.label_docs:,} BBC openings, detection F1 on "
        f"{result.heldout_docs} held-out openings; same reader activations, same labelling and "
        f"scoring code. PCA/ICA directions are kept either as the top {SPARSITY} per token (the "
        "SAE's sparsity per token) or as the top k with k scaled to their number (the SAE's "
        "firing rate per feature: each feature active on the same share of tokens). Balanced "
        "accuracy (bal. acc.) is the mean of the share of positive windows a label matches and "
        "the share of negative windows it does not: a label found in every window scores 0.5 "
        "there and 2/3 in F1, so F1 favours features that fire on frequent words.",
        "",
        "| features | count | scored | F1 p25 | median | p75 | mean | share with F1 ≥ 0.5 "
        "| bal. acc. median | mean share of docs active | chosen: median | chosen: mean "
        "| chosen: bal. acc. median | chosen: peak-token share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rows:
        lines.append(
            f"| {r['method']} | {r['features']:,} | {r['scored']:,} | {r['p25']:.2f} | "
            f"{r['median']:.2f} | {r['p75']:.2f} | {r['mean']:.2f} | {r['share_f1_0.5']:.0%} | "
            f"{r['accuracy_median']:.2f} | {r['density']:.1%} | {r['chosen_median']:.2f} | "
            f"{r['chosen_mean']:.2f} | {r['chosen_accuracy_median']:.2f} | "
            f"{r['chosen_peak_share']:.0%} |"
        )
    return lines + [""]
