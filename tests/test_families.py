"""Feature families: parent -> child latents on a planted structure, the forest rule, labels
and the DOT graph, and the command end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from saetools.analyses.families import families_dot, parent_edges
from saetools.errors import SaetoolsError
from saetools.options import FamiliesOptions


def planted(n: int = 200) -> sp.csr_matrix:
    """Latent 0 in docs 0-59; 1 in 0-19 (child of 0); 2 in 0-9 (child of 1, grandchild of 0);
    3 in 40-69 (only 20 of its 30 docs inside 0); 4 in 95% of docs (too generic to parent);
    5 in 100-104 (too rare)."""
    dense = np.zeros((n, 6), np.float32)
    dense[:60, 0] = 1.0
    dense[:20, 1] = 0.8
    dense[:10, 2] = 0.9
    dense[40:70, 3] = 1.0
    dense[: int(0.95 * n), 4] = 1.0
    dense[100:105, 5] = 1.0
    dense[60:65, 0] = 0.1  # weak firings below the activity threshold do not count
    return sp.csr_matrix(dense)


def test_planted_hierarchy_is_recovered_as_a_forest():
    edges = parent_edges(planted(), FamiliesOptions(min_support=5, max_freq=0.5))
    pairs = set(zip(edges["parent"], edges["child"], strict=True))
    assert pairs == {(0, 1), (1, 2)}  # 2's most specific parent is 1, not 0
    row = edges.set_index("child").loc[1]
    assert row["share"] == 1.0 and row["n_parent"] == 60 and row["n_child"] == 20
    # a looser share lets latent 3 (20 of 30 documents inside latent 0) in
    loose = parent_edges(planted(), FamiliesOptions(min_share=0.6, min_support=5, max_freq=0.5))
    assert (0, 3) in set(zip(loose["parent"], loose["child"], strict=True))
    # the generic latent parents everything once allowed to
    generic = parent_edges(planted(), FamiliesOptions(min_support=5, max_freq=1.0))
    assert 4 in set(generic["parent"])
    # too few documents: no family at all
    assert parent_edges(planted(), FamiliesOptions(min_support=100)).empty


def test_options_are_checked():
    with pytest.raises(SaetoolsError, match="--min-share must be in"):
        FamiliesOptions(min_share=0.4)


def test_dot_graph_quotes_labels():
    frame = pd.DataFrame(
        {
            "parent": [0],
            "child": [1],
            "share": [0.9],
            "parent_label": ['say "hi" \\ there'],
            "child_label": ["two\nlines"],
        }
    )
    dot = families_dot(frame)
    assert 'l0 [label="0: say \\"hi\\" \\\\ there"];' in dot
    assert 'l1 [label="1: two lines"];' in dot
    assert 'l0 -> l1 [label="0.90"];' in dot


def test_families_command_on_real_text(tmp_path, example_texts):
    from click.testing import CliRunner

    from saetools.cli import cli
    from tests.helpers import write_jsonl

    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in example_texts[:150]])
    out, graph = tmp_path / "families.csv", tmp_path / "families.dot"
    result = CliRunner().invoke(
        cli, ["families", str(data), "--out", str(out), "--graph", str(graph), "--top", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "parent -> child pairs" in result.output
    frame = pd.read_csv(out)
    assert len(frame) > 0
    assert {"parent", "child", "share", "parent_label", "child_label", "child_score"} <= set(frame)
    assert (frame["share"] >= 0.8).all() and (frame["n_parent"] > frame["n_child"]).all()
    assert frame["child"].is_unique  # one parent per child
    assert graph.read_text().startswith("digraph families {")
    # recomputed independently from the store: every child fires mostly inside its parent
    import saetools
    from saetools.store.activity import binarize

    store = saetools.encode(data, progress=False)
    active = binarize(store.matrix).toarray() > 0
    for row in frame.head(20).itertuples():
        inside = (active[:, row.parent] & active[:, row.child]).sum() / active[:, row.child].sum()
        assert inside == pytest.approx(row.share)
        assert active[:, row.parent].mean() <= 0.2
