"""SAEs named by hub reference or SAELens release, fetched from a Hugging Face cache built here
in the exact public layout (``models--org--repo/refs/main``, ``snapshots/<commit>/...``), with
the hub unreachable; stores that record where their SAE came from and open elsewhere."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import saetools
from saetools.errors import SaetoolsError
from saetools.sae import hub
from saetools.sae.hub import HubReference, parse_reference
from saetools.sae.io import load_sae
from saetools.store.reader import open_store

COMMIT = "0123456789abcdef0123456789abcdef01234567"
GEMMA_REF = "google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty hub cache, offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.fetch.cache_clear()
    yield cache
    hub.fetch.cache_clear()


def cached_repo(cache, repo: str):
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    return snapshot


def gemma_scope_params(folder, d_in=576, d_sae=64, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    np.savez(
        folder / "params.npz",
        W_enc=g.normal(size=(d_in, d_sae)).astype(np.float32) * 0.05,
        W_dec=g.normal(size=(d_sae, d_in)).astype(np.float32) * 0.05,
        b_enc=np.zeros(d_sae, np.float32),
        b_dec=np.zeros(d_in, np.float32),
        threshold=np.full(d_sae, 0.01, np.float32),
    )
    return folder


@pytest.mark.parametrize(
    "given,expected",
    [
        (GEMMA_REF, HubReference("google/gemma-scope-2b-pt-res", GEMMA_REF.split("/", 2)[2])),
        (
            "hf://" + GEMMA_REF,
            HubReference("google/gemma-scope-2b-pt-res", GEMMA_REF.split("/", 2)[2]),
        ),
        (
            "gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71",
            HubReference("google/gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71"),
        ),
        (
            "llama_scope_lxr_8x/l15r_8x",
            HubReference("fnlp/Llama3_1-8B-Base-LXR-8x", "Llama3_1-8B-Base-L15R-8x"),
        ),
        (
            "goodfire-llama-3.1-8b-instruct/layer_19",
            HubReference(
                "Goodfire/Llama-3.1-8B-Instruct-SAE-l19", "Llama-3.1-8B-Instruct-SAE-l19.pth"
            ),
        ),
        (
            "Goodfire/Llama-3.1-8B-Instruct-SAE-l19",
            HubReference("Goodfire/Llama-3.1-8B-Instruct-SAE-l19", ""),
        ),
        ("./not/here", None),
        ("plainname", None),
    ],
)
def test_references_parse(given, expected):
    assert parse_reference(given) == expected


def test_existing_local_paths_are_not_hub_references(tmp_path, monkeypatch):
    (tmp_path / "org" / "repo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert parse_reference("org/repo") is None
    with pytest.raises(SaetoolsError, match="expected one like l15r_8x"):
        parse_reference("llama_scope_lxr_8x/layer_15")


def test_a_cached_hub_sae_loads_offline(hf_cache):
    snapshot = cached_repo(hf_cache, "google/gemma-scope-2b-pt-res")
    gemma_scope_params(snapshot / "layer_20" / "width_16k" / "average_l0_71", d_in=16)
    for ref in (GEMMA_REF, "gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71"):
        sae = load_sae(ref)
        assert sae.cfg.d_in == 16 and sae.cfg.architecture == "jumprelu"
        assert sae.cfg.reader == {"name": "google/gemma-2-2b", "layer": 20, "site": "resid_post"}


def test_a_cached_goodfire_release_loads_offline(hf_cache):
    snapshot = cached_repo(hf_cache, "Goodfire/Llama-3.1-8B-Instruct-SAE-l19")
    torch.save(
        {
            "encoder_linear.weight": torch.randn(32, 8),
            "encoder_linear.bias": torch.zeros(32),
            "decoder_linear.weight": torch.randn(8, 32),
            "decoder_linear.bias": torch.zeros(8),
        },
        snapshot / "Llama-3.1-8B-Instruct-SAE-l19.pth",
    )
    sae = load_sae("goodfire-llama-3.1-8b-instruct/layer_19")
    assert sae.cfg.reader["name"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert sae.cfg.reader["layer"] == 19 and sae.cfg.d_sae == 32


def test_an_uncached_hub_sae_offline_is_a_one_line_error(hf_cache):
    with pytest.raises(SaetoolsError) as err:
        load_sae(GEMMA_REF)
    message = str(err.value)
    assert "\n" not in message
    assert "hf://" + GEMMA_REF in message and "HF_HUB_OFFLINE=1" in message
    assert str(hf_cache) in message


def test_a_store_finds_its_sae_by_relative_path_and_by_hub_reference(hf_cache, tmp_path, capsys):
    snapshot = cached_repo(hf_cache, "google/gemma-scope-2b-pt-res")
    gemma_scope_params(snapshot / "layer_20" / "width_16k" / "average_l0_71")
    texts = ["The cat sat on the mat.", "Stock markets fell sharply on Monday.", "Rain again."]
    store = saetools.encode(texts, tmp_path / "hub-store", sae=GEMMA_REF, reader="smollm2-135m")
    recorded = store.manifest["sae"]
    assert recorded["ref"] == "hf://" + GEMMA_REF
    assert store.manifest["reader"]["layer"] == 20  # the SAE's layer, from its hub path
    check = store.manifest["sae_check"]
    assert check["tokens"] >= 2 and check["fvu"] > 0.5  # random weights do not fit
    warning = capsys.readouterr().err
    assert f"FVU {check['fvu']:.2f} (above 0.5)" in warning
    assert "the SAE was trained on google/gemma-2-2b, resid_post of layer 20" in warning

    # on another machine the absolute path is gone: the hub reference (cache) is used
    manifest_path = store.folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sae"]["path"] = "/elsewhere/gone"
    manifest["sae"].pop("relative")
    manifest_path.write_text(json.dumps(manifest))
    moved = open_store(store.folder)
    assert moved.sae_path == snapshot / "layer_20" / "width_16k" / "average_l0_71"

    # a store and its SAE copied together keep finding each other by relative path
    project = tmp_path / "project"
    sae_folder = gemma_scope_params(project / "saes" / "mine", seed=1)
    local = saetools.encode(texts, project / "stores" / "a", sae=sae_folder, reader="smollm2-135m")
    assert local.manifest["sae"]["relative"] == "../../saes/mine"
    shutil.move(project, tmp_path / "copied")
    copied = open_store(tmp_path / "copied" / "stores" / "a")
    assert copied.sae_path == (tmp_path / "copied" / "saes" / "mine").resolve()


def test_a_layer_that_contradicts_the_sae_is_an_error(tmp_path):
    with pytest.raises(
        SaetoolsError,
        match="--layer 5 contradicts the SAE, which was trained on resid_post of layer 15",
    ):
        saetools.encode(["one text"], tmp_path / "s", layer=5)
