"""Steered search: move a query embedding along SAE feature directions, then retrieve documents
by cosine similarity (after "Steering semantic search with interpretable features from sparse
autoencoders").

The query x is embedded by the store's document-embedding reader and encoded, h = f(x). A steer
"latent j by δ" asks for the target activation t_j = max(0, h_j + δ·s_j), where s_j is j's
largest pooled activation in the store (δ = +1 adds j as strongly as the document that shows it
most; δ = −1 removes it). Other latents keep t_i = h_i. Two ways to get an embedding with those
activations:

* direct: x' = x + Σ_j (t_j − h_j)·w_j, w_j the decoder row of j (adding to the hidden code and
  decoding is the same as adding the decoder direction to the embedding);
* iterative: z* = argmin_z ‖f(x + g(z) − g(h)) − t‖² (plus, for the steered latents S,
  ‖relu(pre_S) − t_S‖², since a latent outside the top k gets no gradient through f), from the
  direct edit z = t, AdamW with a cosine learning-rate schedule; x' = x + g(z*) − g(h), so the
  part of x the SAE does not reconstruct is kept.

Documents are ranked by cos(x', e_d). Docs: docs/search.md (steering).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ..errors import SaetoolsError
from .search import last_store_cache

STEER_METHODS = ("direct", "iterative")
ITERATIVE_STEPS = 100
"""Optimisation steps of the iterative method."""
ITERATIVE_LR = 0.01
"""Peak learning rate of the iterative method, as a share of the largest target activation."""


class Steer(NamedTuple):
    """One requested edit: a latent id or label words, and δ in units of the latent's largest
    activation in the store."""

    target: int | str
    delta: float


class QueryEdit(NamedTuple):
    """A query embedding before and after steering (both unit-norm), the query's activations,
    the target activations and what the steered embedding re-encodes to."""

    original: np.ndarray
    steered: np.ndarray
    before: np.ndarray
    target: np.ndarray
    achieved: np.ndarray
    fidelity: float


_STEER = re.compile(r"^(?P<target>.+?)\s*=\s*(?P<delta>[+-]?\s*(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$")


def parse_steer(text: str | Steer | tuple) -> Steer:
    """``"123=+0.3"`` -> ``Steer(123, 0.3)``; ``"formal tone=-0.2"`` -> ``Steer("formal tone",
    -0.2)``. A :class:`Steer` or ``(target, delta)`` pair passes through."""
    if isinstance(text, tuple):
        target, delta = text
        return Steer(int(target) if isinstance(target, (int, np.integer)) else target, float(delta))
    match = _STEER.match(str(text).strip())
    if not match or not match["target"].strip():
        raise SaetoolsError(
            f"--steer {text!r}: expected LATENT=DELTA or 'label words=DELTA' (DELTA a number "
            "such as +0.5 or -1)"
        )
    target = match["target"].strip()
    delta = float(match["delta"].replace(" ", ""))
    return Steer(int(target) if target.isdigit() else target, delta)


def _decode(sae, z: torch.Tensor) -> torch.Tensor:
    """g(z): decoder output for dense latents (in the SAE's normalised input space)."""
    return z @ sae.W_dec + sae.b_dec


def steer_embedding(
    sae,
    x: np.ndarray,
    changes: dict[int, float],
    *,
    method: str = "direct",
    steps: int = ITERATIVE_STEPS,
    lr: float = ITERATIVE_LR,
    seed: int = 0,
) -> QueryEdit:
    """Steer one embedding ``x [d_in]``: ``changes`` maps latents to the change of their
    activation (in activation units); ``method`` is ``direct`` or ``iterative``."""
    if method not in STEER_METHODS:
        raise SaetoolsError(f"unknown steering method {method!r} (choose from direct, iterative)")
    param = next(sae.parameters())
    if param.dtype != torch.float32 or param.device.type != "cpu":
        import copy

        sae = copy.deepcopy(sae).float().cpu()
    xs = torch.as_tensor(np.asarray(x, dtype=np.float32))[None]
    stats = sae.input_stats(xs)
    scale = 1.0 if stats is None else stats[0]
    with torch.no_grad():
        h = sae.encode_dense(xs)[0]
    target = h.clone()
    for latent, change in changes.items():
        target[latent] = (h[latent] + change).clamp_min(0.0)
    if method == "direct":
        with torch.no_grad():
            shift = (target - h) @ sae.W_dec
    else:
        torch.manual_seed(seed)
        # from the direct edit: started at h, a latent outside the top k never enters it
        z = target.clone().requires_grad_(True)
        with torch.no_grad():
            base = _decode(sae, h)
        steered_ids = torch.tensor(sorted(changes), dtype=torch.long)
        peak = float(target.abs().max()) or 1.0
        opt = torch.optim.AdamW([z], lr=lr * peak)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        trainable = [p for p in sae.parameters() if p.requires_grad]
        for p in trainable:  # only z is optimised: no gradient into (or left on) the SAE
            p.requires_grad_(False)
        try:
            for _ in range(steps):
                opt.zero_grad()
                moved = xs + (_decode(sae, z.relu()) - base) * scale
                loss = ((sae.encode_dense(moved)[0] - target) ** 2).sum()
                if len(steered_ids):
                    # a latent outside the top k gets no gradient through f; its ReLU'd
                    # pre-activation pulls it in
                    pre = sae.pre_acts(moved)[0, steered_ids].relu()
                    loss = loss + ((pre - target[steered_ids]) ** 2).sum()
                loss.backward()
                opt.step()
                schedule.step()
        finally:
            for p in trainable:
                p.requires_grad_(True)
        with torch.no_grad():
            shift = _decode(sae, z.detach().relu()) - base
    with torch.no_grad():
        steered = xs[0] + shift * scale
        achieved = sae.encode_dense(steered[None])[0]
    original = xs[0].numpy()
    steered = steered.numpy()
    unit = lambda v: v / max(float(np.linalg.norm(v)), 1e-12)  # noqa: E731
    fidelity = float(unit(original) @ unit(steered))
    return QueryEdit(
        unit(original), unit(steered), h.numpy(), target.numpy(), achieved.numpy(), fidelity
    )


def resolve_steers(store, steers) -> list[tuple[int, float, str]]:
    """``(latent, δ, how it was named)`` for each steer; label words pick the latent whose label
    is most similar to them."""
    from .latents import choose_latents

    out = []
    for steer in steers:
        steer = parse_steer(steer)
        if isinstance(steer.target, int):
            if not 0 <= steer.target < store.d_sae:
                raise SaetoolsError(
                    f"--steer {steer.target}: latent out of range (the SAE has {store.d_sae})"
                )
            out.append((steer.target, steer.delta, str(steer.target)))
            continue
        match = choose_latents(store, steer.target, top=1, min_freq=0.0, max_freq=1.0)
        out.append((int(match["latent"].iloc[0]), steer.delta, steer.target))
    return out


def _scales(searcher) -> np.ndarray:
    """Each latent's largest pooled activation in the store; latents never active here get the
    median of the others, so they can still be added."""
    scale = searcher.scale.astype(np.float64).copy()
    positive = scale[scale > 0]
    scale[scale <= 0] = float(np.median(positive)) if len(positive) else 1.0
    return scale


def query_features(edit: QueryEdit, scale: np.ndarray, labels: dict[int, str], top: int):
    """The query's own strongest latents: ``latent``, ``label``, ``activation`` (raw) and
    ``strength`` (activation / the latent's largest in the store), strongest first."""
    strength = edit.before / scale
    order = [int(j) for j in np.argsort(-strength, kind="stable")[:top] if edit.before[j] > 0]
    return [
        {
            "latent": j,
            "label": labels.get(j, ""),
            "activation": float(edit.before[j]),
            "strength": float(strength[j]),
        }
        for j in order
    ]


class SteeredSearch:
    """What steered queries on one store share: its reader, SAE, document embeddings, label
    table and per-latent scales (built once; each :meth:`query` is then fast)."""

    def __init__(self, store, *, device: str | None = "auto", progress: bool = False) -> None:
        from ..labels import labels_of_store
        from ..store.embeddings import document_embeddings, require_embedding_store
        from .search import searcher_of_store

        require_embedding_store(store)
        self.store = store
        self.reader = store.open_reader(device=device, progress=progress)
        self.sae = store.load_sae().float().cpu()
        self.embeddings = document_embeddings(store, self.reader, progress=progress)
        self.labels = labels_of_store(store)
        self.searcher = searcher_of_store(store)
        self.scale = _scales(self.searcher)

    def embed(self, query: str) -> np.ndarray:
        """The query's embedding, as the store's documents were embedded."""
        if not query or not str(query).strip():
            raise SaetoolsError("the query is empty")
        return self.reader.embed([str(query)])[0]

    def query(
        self,
        query: str,
        steers=(),
        *,
        method: str = "direct",
        top: int = 10,
        features: int = 8,
    ) -> pd.DataFrame:
        """Documents closest to the steered query, best first (see :func:`steered_search`)."""
        resolved = resolve_steers(self.store, steers)
        changes: dict[int, float] = {}
        for latent, delta, _ in resolved:
            changes[latent] = changes.get(latent, 0.0) + delta * self.scale[latent]
        edit = steer_embedding(self.sae, self.embed(query), changes, method=method)
        scores = self.embeddings @ edit.steered
        base = self.embeddings @ edit.original
        n = min(top, len(scores))
        rows = np.lexsort((np.arange(len(scores)), -scores))[:n]
        was = 1 + (base[None, :] > base[rows][:, None]).sum(axis=1)
        shown = query_features(edit, self.scale, self.labels, features)
        steered_ids = [latent for latent, delta, _ in resolved if delta > 0]
        frame = self._frame(rows, scores, was, steered_ids + [f["latent"] for f in shown])
        frame.attrs.update(
            query=query,
            like=None,
            mode="steered",
            method=method,
            fidelity=edit.fidelity,
            query_features=shown,
            steers=[
                {
                    "latent": latent,
                    "named": named,
                    "label": self.labels.get(latent, ""),
                    "delta": delta,
                    "before": float(edit.before[latent]),
                    "target": float(edit.target[latent]),
                    "achieved": float(edit.achieved[latent]),
                }
                for latent, delta, named in resolved
            ],
            latents=[
                {"latent": f["latent"], "label": f["label"], "weight": f["strength"]} for f in shown
            ],
            n_docs=len(self.store),
        )
        return frame

    def _frame(self, rows, scores, was, candidates) -> pd.DataFrame:
        """Result rows: rank, id, cosine score, rank before steering, and the candidate latent
        strongest in each document (relative to its store maximum) with its label."""
        from ..text import snippet

        store = self.store
        texts = store.docs["text"].astype(str).to_numpy()
        ids = store.docs["id"].astype(str).to_numpy()
        candidates = np.asarray(list(dict.fromkeys(candidates)), dtype=np.int64)
        out = []
        for rank, row in enumerate(rows, start=1):
            best, label = -1, ""
            if len(candidates):
                share = self.searcher.contributions(int(row), candidates, np.ones(len(candidates)))
                if share.max() > 0:
                    best = int(candidates[int(np.argmax(share))])
                    label = self.labels.get(best, "")
            out.append(
                {
                    "rank": rank,
                    "id": ids[row],
                    "score": float(scores[row]),
                    "was": int(was[rank - 1]),
                    "row": int(row),
                    "latent": best,
                    "label": label,
                    "snippet": snippet(texts[row], 0, 0, width=120, mark=("", "")),
                }
            )
        columns = ["rank", "id", "score", "was", "row", "latent", "label", "snippet"]
        return pd.DataFrame(out, columns=columns)


@last_store_cache
def steered_search_of_store(store, *, device: str | None = "auto", progress: bool = False):
    """The :class:`SteeredSearch` of a store (built once per process, for the last store asked)."""
    return SteeredSearch(store, device=device, progress=progress)


def steered_search(
    store, query: str, options, *, device: str | None = "auto", progress: bool = False
) -> pd.DataFrame:
    """Documents of a document-embedding store closest to ``query`` after steering it with
    ``options.steer`` (``rank``, ``id``, cosine ``score``, ``was``: the rank before steering,
    the most active steered or query ``latent`` with its ``label``, a ``snippet``). The frame's
    ``attrs`` hold the query's own top features, each steer's activation before / target /
    achieved, and the fidelity cos(x, x')."""
    if query is None:
        raise SaetoolsError("steered search needs a query text")
    search = steered_search_of_store(store, device=device, progress=progress)
    return search.query(
        query,
        options.steer or (),
        method=options.steer_method,
        top=options.top,
        features=options.top_latents,
    )
