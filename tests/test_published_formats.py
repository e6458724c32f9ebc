"""SAEs in the layouts they are published in (Gemma Scope, Llama Scope, Goodfire, SAELens
normalisation modes; sparsify is in test_formats.py), built in temp folders with the public
tensor names and shapes, checked against reference computations written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from saetools.errors import SaetoolsError
from saetools.readers.hooks import HookPoint, parse_hook_name
from saetools.sae.io import detect_format, load_sae

D_IN, D_SAE = 16, 48


def weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g) * 0.3,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g) * 0.3,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
        "b_dec": torch.randn(D_IN, generator=g),
    }


def inputs(seed=1, scale=3.0):
    return torch.randn(30, D_IN, generator=torch.Generator().manual_seed(seed)) * scale


def assert_sae_matches(sae, x, acts, recon):
    torch.testing.assert_close(sae.encode_dense(x), acts, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sae(x), recon, atol=1e-4, rtol=1e-4)
    assert (acts > 0).any() and (acts == 0).any()  # the check is not vacuous


def gemma_scope_folder(root, release="gemma-scope-2b-pt-res", layer=20):
    folder = root / release / f"layer_{layer}" / "width_16k" / "average_l0_71"
    folder.mkdir(parents=True)
    w = weights(5)
    threshold = torch.rand(D_SAE, generator=torch.Generator().manual_seed(6))
    np.savez(
        folder / "params.npz",
        W_enc=w["W_enc"].numpy(),
        W_dec=w["W_dec"].numpy(),
        b_enc=w["b_enc"].numpy(),
        b_dec=w["b_dec"].numpy(),
        threshold=threshold.numpy(),
    )
    return folder, w, threshold


def test_gemma_scope_params_npz(tmp_path):
    folder, w, threshold = gemma_scope_folder(tmp_path)
    assert detect_format(folder)[0] == "gemma_scope"
    sae = load_sae(folder)
    assert sae.cfg.reader == {"name": "google/gemma-2-2b", "layer": 20, "site": "resid_post"}
    x = inputs()
    pre = x @ w["W_enc"] + w["b_enc"]  # Gemma Scope: no decoder bias on the input
    acts = torch.where(pre > threshold, torch.relu(pre), 0)
    assert_sae_matches(sae, x, acts, acts @ w["W_dec"] + w["b_dec"])

    mlp, _, _ = gemma_scope_folder(tmp_path, "gemma-scope-9b-it-mlp", layer=9)
    assert load_sae(mlp).cfg.reader == {
        "name": "google/gemma-2-9b-it",
        "layer": 9,
        "site": "mlp_out",
    }
    att, _, _ = gemma_scope_folder(tmp_path, "gemma-scope-2b-pt-att", layer=3)
    with pytest.raises(SaetoolsError, match="hook_z"):
        load_sae(att)


def test_gemma_scope_npz_with_python_objects_is_refused(tmp_path):
    folder = tmp_path / "gemma-scope-2b-pt-res" / "layer_1" / "w"
    folder.mkdir(parents=True)
    np.savez(folder / "params.npz", W_enc=np.array([object()], dtype=object))
    with pytest.raises(SaetoolsError, match="params.npz: refused or unreadable"):
        load_sae(folder)


def llama_scope_folder(root, norm_in=6.3, norm_out=5.1, threshold=0.2):
    folder = root / "Llama3_1-8B-Base-LXR-8x" / "Llama3_1-8B-Base-L8R-8x"
    (folder / "checkpoints").mkdir(parents=True)
    w = weights(7)
    save_file(
        {
            "encoder.weight": w["W_enc"].t().contiguous(),
            "encoder.bias": w["b_enc"],
            "decoder.weight": w["W_dec"].t().contiguous(),
            "decoder.bias": w["b_dec"],
        },
        str(folder / "checkpoints" / "final.safetensors"),
    )
    hyperparams = {
        "d_model": D_IN,
        "d_sae": D_SAE,
        "hook_point_in": "blocks.8.hook_resid_post",
        "hook_point_out": "blocks.8.hook_resid_post",
        "act_fn": "jumprelu",
        "jump_relu_threshold": threshold,
        "norm_activation": "dataset-wise",
        "dataset_average_activation_norm": {"in": norm_in, "out": norm_out},
        "apply_decoder_bias_to_pre_encoder": False,
        "use_decoder_bias": True,
        "top_k": 50,
    }
    (folder / "hyperparams.json").write_text(json.dumps(hyperparams))
    return folder, w, hyperparams


def test_llama_scope_dataset_wise_normalisation(tmp_path):
    folder, w, hp = llama_scope_folder(tmp_path)
    sae = load_sae(folder)
    assert sae.cfg.reader == {
        "name": "meta-llama/Llama-3.1-8B",
        "layer": 8,
        "site": "resid_post",
    }
    x = inputs(scale=1.5)
    scale_in = math.sqrt(D_IN) / hp["dataset_average_activation_norm"]["in"]
    scale_out = hp["dataset_average_activation_norm"]["out"] / math.sqrt(D_IN)
    pre = (x * scale_in) @ w["W_enc"] + w["b_enc"]
    acts = torch.where(pre > hp["jump_relu_threshold"], pre, 0)
    recon = (acts @ w["W_dec"] + w["b_dec"]) * scale_out
    torch.testing.assert_close(sae(x), recon, atol=1e-4, rtol=1e-4)
    active = sae.encode_dense(x) > 0
    assert torch.equal(active, acts > 0) and active.any()


def test_llama_scope_transcoder_is_refused(tmp_path):
    folder, _, hp = llama_scope_folder(tmp_path)
    hp["hook_point_in"] = "blocks.8.ln2.hook_normalized"
    hp["hook_point_out"] = "blocks.8.hook_mlp_out"
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    with pytest.raises(SaetoolsError, match="transcoder"):
        load_sae(folder)


def goodfire_state(w):
    return {
        "encoder_linear.weight": w["W_enc"].t().contiguous(),
        "encoder_linear.bias": w["b_enc"],
        "decoder_linear.weight": w["W_dec"].t().contiguous(),
        "decoder_linear.bias": w["b_dec"],
    }


def test_goodfire_pth_state_dict(tmp_path):
    w = weights(9)
    path = tmp_path / "Llama-3.1-8B-Instruct-SAE-l19.pth"
    torch.save(goodfire_state(w), path)
    for given in (path, tmp_path):  # the file, or the folder holding it
        sae = load_sae(given)
        assert sae.cfg.architecture == "relu"
        assert sae.cfg.reader == {
            "name": "meta-llama/Llama-3.1-8B-Instruct",
            "layer": 19,
            "site": "resid_post",
        }
    x = inputs()
    acts = torch.relu(x @ w["W_enc"] + w["b_enc"])
    assert_sae_matches(sae, x, acts, acts @ w["W_dec"] + w["b_dec"])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_payload_in_a_pth_never_runs(tmp_path):
    marker = tmp_path / "ran"
    state = goodfire_state(weights())
    state["extra"] = _Payload(marker)
    path = tmp_path / "sae.pth"
    torch.save(state, path)
    with pytest.raises(SaetoolsError, match=r"sae.pth: refused: the file holds Python objects"):
        load_sae(path)
    assert not marker.exists()


def saelens_folder(root, norm, extra=None):
    folder = root / norm
    folder.mkdir()
    w = weights(11)
    save_file(w, str(folder / "sae_weights.safetensors"))
    cfg = {
        "architecture": "standard",
        "d_in": D_IN,
        "d_sae": D_SAE,
        "dtype": "float32",
        "apply_b_dec_to_input": True,
        "normalize_activations": norm,
        "metadata": {"model_name": "gpt2", "hook_name": "blocks.5.hook_mlp_out"},
        **(extra or {}),
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder, w


def relu_sae_reference(x, w):
    acts = torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
    return acts, acts @ w["W_dec"] + w["b_dec"]


def test_saelens_constant_norm_rescale(tmp_path):
    folder, w = saelens_folder(tmp_path, "constant_norm_rescale")
    sae = load_sae(folder)
    assert sae.cfg.reader["site"] == "mlp_out" and sae.cfg.reader["layer"] == 5
    x = inputs(scale=7.0)
    coeff = math.sqrt(D_IN) / x.norm(dim=-1, keepdim=True)
    acts, recon = relu_sae_reference(x * coeff, w)
    assert_sae_matches(sae, x, acts, recon / coeff)


def test_saelens_layer_norm(tmp_path):
    folder, w = saelens_folder(tmp_path, "layer_norm")
    sae = load_sae(folder)
    x = inputs(scale=4.0) + 2.0
    mean = x.mean(-1, keepdim=True)
    std = (x - mean).std(-1, keepdim=True)
    acts, recon = relu_sae_reference((x - mean) / (std + 1e-5), w)
    assert_sae_matches(sae, x, acts, recon * std + mean)


def test_saelens_expected_average_only_in_folds_its_factor(tmp_path):
    folder, w = saelens_folder(tmp_path, "expected_average_only_in", {"norm_scaling_factor": 0.25})
    sae = load_sae(folder)
    x = inputs(scale=8.0)
    acts, recon = relu_sae_reference(x * 0.25, w)
    assert_sae_matches(sae, x, acts, recon / 0.25)


def test_saelens_unknown_normalisation_is_refused(tmp_path):
    folder, _ = saelens_folder(tmp_path, "mystery")
    with pytest.raises(SaetoolsError, match="normalize_activations='mystery' is not supported"):
        load_sae(folder)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("blocks.8.hook_resid_pre", HookPoint(8, "resid_pre")),
        ("blocks.8.hook_resid_post", HookPoint(8, "resid_post")),
        ("blocks.5.hook_mlp_out", HookPoint(5, "mlp_out")),
        ("blocks.5.attn.hook_attn_out", HookPoint(5, "attn_out")),
        ("blocks.5.hook_attn_out", HookPoint(5, "attn_out")),
        ("model.layers.12", HookPoint(12, "resid_post")),
        ("layers.3.mlp", HookPoint(3, "mlp_out")),
    ],
)
def test_hook_names_mean_what_they_say(name, expected):
    assert parse_hook_name(name) == expected


@pytest.mark.parametrize("name", ["blocks.4.attn.hook_z", "blocks.4.hook_resid_mid", "embed"])
def test_unreadable_hook_points_are_refused(name):
    with pytest.raises(SaetoolsError, match=f"hook point '{name}'"):
        parse_hook_name(name)
