"""``saetools merge``: stores joined equal a store of the concatenated input; stores encoded
differently are refused."""

from __future__ import annotations

import numpy as np
import pytest

import saetools
from saetools.errors import SaetoolsError

from .helpers import cli_error, random_sae, write_jsonl


@pytest.fixture(scope="module")
def parts(tmp_path_factory, reader_bf16, example_texts):
    folder = tmp_path_factory.mktemp("merge")
    sae = random_sae(folder / "sae", d_sae=256, k=8)
    rows = [{"id": f"d{k}", "text": t[:300]} for k, t in enumerate(example_texts[:21])]
    stores = []
    for name, chunk in (("a", rows[:8]), ("b", rows[8:13]), ("c", rows[13:])):
        data = write_jsonl(folder / f"{name}.jsonl", chunk)
        stores.append(
            saetools.encode(
                data, out=folder / name, reader=reader_bf16, sae=sae, shard_docs=3, progress=False
            )
        )
    whole = write_jsonl(folder / "all.jsonl", rows)
    reference = saetools.encode(
        whole, out=folder / "all", reader=reader_bf16, sae=sae, progress=False
    )
    return folder, sae, stores, reference


def test_merged_stores_equal_a_store_of_the_concatenated_input(parts, tmp_path):
    folder, _, stores, reference = parts
    merged = saetools.merge([s.folder for s in stores], tmp_path / "merged")
    assert len(merged) == 21 and len(merged.manifest["shards"]) == 3 + 2 + 3
    cols = ["id", "text"]
    assert merged.docs[cols].equals(reference.docs[cols])
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(merged.matrix, name), getattr(reference.matrix, name))
    assert np.array_equal(merged.spans, reference.spans)
    assert merged.examples.equals(reference.examples)
    assert merged.identity == reference.identity
    assert saetools.diff(merged, reference, progress=False)["significant"].sum() == 0
    from saetools.store.verify import verify_store

    assert verify_store(merged.folder)["docs"] == 21
    assert merged.sae_path == reference.sae_path


def test_merge_refuses_other_saes_one_store_and_a_used_out(parts, tmp_path, reader_bf16):
    folder, _, stores, _ = parts
    other = saetools.encode(
        ["One more text."],
        out=tmp_path / "o",
        reader=reader_bf16,
        sae=random_sae(tmp_path / "sae2", d_sae=256, k=8, seed=3),
        progress=False,
    )
    message = cli_error("merge", stores[0].folder, other.folder, "--out", tmp_path / "m")
    assert "encoded differently" in message and not (tmp_path / "m").exists()
    with pytest.raises(SaetoolsError, match="at least two"):
        saetools.merge([stores[0].folder], tmp_path / "m")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    assert "not empty" in cli_error(
        "merge", stores[0].folder, stores[1].folder, "--out", tmp_path / "used"
    )
