"""Feature families: which latents are specialisations of which (parent -> child).

After "Steering semantic search with interpretable features from sparse autoencoders": a child
fires mostly where its parent fires, and the parent is the denser of the two. With A the 0/1
activity of the latents over the documents (``rho`` relative threshold, as in every analysis)
and n_j the documents where latent j is active, latent p is a parent of latent c when

    share(p, c) = |{d : p and c active}| / n_c  >=  min_share     and     n_p > n_c,

both have at least ``min_support`` documents, and p is active in at most ``max_freq`` of the
documents (a latent active almost everywhere would parent everything). Each child keeps one
parent: the most specific qualifying one (the smallest n_p, then the highest share), so chains
(grandparent -> parent -> child) come out as a forest rather than as every implied pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..options import FamiliesOptions
from ..store.activity import binarize


def parent_edges(matrix: sp.csr_matrix, options: FamiliesOptions | None = None) -> pd.DataFrame:
    """``parent, child, share, n_parent, n_child`` for every child's chosen parent (see the
    module docstring), ordered by parent then share."""
    o = options or FamiliesOptions()
    active = binarize(matrix, o.rho).tocsc()
    counts = np.diff(active.indptr)
    n_docs = max(matrix.shape[0], 1)
    eligible = np.nonzero(counts >= o.min_support)[0]
    columns = ["parent", "child", "share", "n_parent", "n_child"]
    if len(eligible) < 2:
        return pd.DataFrame(columns=columns)
    sub = active[:, eligible]
    together = (sub.T @ sub).tocoo()
    p, c, both = eligible[together.row], eligible[together.col], together.data
    share = both / counts[c]
    keep = (
        (p != c)
        & (share >= o.min_share)
        & (counts[p] > counts[c])
        & (counts[p] <= o.max_freq * n_docs)
    )
    frame = pd.DataFrame(
        {
            "parent": p[keep].astype(np.int64),
            "child": c[keep].astype(np.int64),
            "share": share[keep].astype(np.float64),
            "n_parent": counts[p[keep]].astype(np.int64),
            "n_child": counts[c[keep]].astype(np.int64),
        }
    )
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.sort_values(["child", "n_parent", "share"], ascending=[True, True, False])
    frame = frame.drop_duplicates("child", keep="first")
    return frame.sort_values(["n_parent", "parent", "share"], ascending=[False, True, False])[
        columns
    ].reset_index(drop=True)


def families_store(store, options: FamiliesOptions | None = None) -> pd.DataFrame:
    """:func:`parent_edges` of a store with both latents' labels and label scores
    (``parent_label``, ``child_label``, ``parent_score``, ``child_score``: held-out F1 where the
    labels carry one)."""
    from ..labels import label_scores_of_store, labels_of_store, top_token_labels

    frame = parent_edges(store.matrix, options)
    latents = sorted(set(frame["parent"]).union(frame["child"]))
    labels = labels_of_store(store)
    missing = [j for j in latents if j not in labels]
    if missing:
        labels = {**labels, **top_token_labels([store], missing)}
    scores = label_scores_of_store(store)
    for role in ("parent", "child"):
        frame[f"{role}_label"] = [labels.get(int(j), "") for j in frame[role]]
        frame[f"{role}_score"] = [scores.get(int(j), np.nan) for j in frame[role]]
    frame.attrs.update(n_docs=len(store), source=store.source_name)
    return frame


def families_dot(frame: pd.DataFrame) -> str:
    """The families as a Graphviz DOT digraph (parent -> child, labelled with the share)."""

    def quote(text) -> str:
        escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
        return '"' + " ".join(escaped.split()) + '"'

    lines = ["digraph families {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    nodes = {}
    for row in frame.itertuples(index=False):
        nodes[int(row.parent)] = row.parent_label
        nodes[int(row.child)] = row.child_label
    for latent, label in sorted(nodes.items()):
        lines.append(f"  l{latent} [label={quote(f'{latent}: {label}')}];")
    for row in frame.itertuples(index=False):
        edge = f"l{int(row.parent)} -> l{int(row.child)}"
        lines.append(f"  {edge} [label={quote(f'{row.share:.2f}')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
