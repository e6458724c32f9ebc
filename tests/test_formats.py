"""SAE formats: SAELens round trips, and hand-built SAELens v6 / pre-6, sparsify and
dictionary_learning checkpoints with the documented tensor names."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from saetools.errors import SaetoolsError
from saetools.sae.io import load_sae, save_sae
from saetools.sae.models import ARCHITECTURES, SAEConfig, build_sae

D_IN, D_SAE, K = 16, 40, 5


def random_sae(arch, tied=False):
    torch.manual_seed(3)
    cfg = SAEConfig(
        arch,
        D_IN,
        D_SAE,
        K if arch in ("topk", "batchtopk") else None,
        tied=tied,
        reader={"name": "smollm2-135m", "layer": 7, "window": 512},
    )
    sae = build_sae(cfg)
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_()
        if hasattr(sae, "threshold"):
            sae.threshold.uniform_(0, 1)
    return sae


def tensors(sae):
    out = {"W_enc": sae.W_enc, "W_dec": sae.W_dec, "b_enc": sae.b_enc, "b_dec": sae.b_dec}
    if hasattr(sae, "threshold"):
        out["threshold"] = sae.threshold
    return {k: v.detach() for k, v in out.items()}


@pytest.mark.parametrize(
    "arch,tied", [(a, False) for a in sorted(ARCHITECTURES)] + [("relu", True)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_saelens_round_trip_is_bit_identical(arch, tied, dtype, tmp_path):
    sae = random_sae(arch, tied).to(dtype)
    save_sae(sae, tmp_path / "a")
    loaded = load_sae(tmp_path / "a", dtype=None)
    assert type(loaded) is type(sae)
    assert loaded.cfg.to_dict() == sae.cfg.to_dict()
    for name, value in tensors(sae).items():
        assert torch.equal(tensors(loaded)[name], value), name
    save_sae(loaded, tmp_path / "b")
    first = load_file(str(tmp_path / "a" / "sae_weights.safetensors"))
    second = load_file(str(tmp_path / "b" / "sae_weights.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "a" / "cfg.json").read_text() == (tmp_path / "b" / "cfg.json").read_text()


def test_saved_layout_follows_saelens_names_and_shapes(tmp_path):
    save_sae(random_sae("topk"), tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    weights = load_file(str(tmp_path / "sae_weights.safetensors"))
    assert cfg["architecture"] == "topk" and cfg["k"] == K
    assert cfg["d_in"] == D_IN and cfg["d_sae"] == D_SAE
    assert cfg["metadata"]["hook_name"] == "blocks.7.hook_resid_post"
    assert {k: tuple(v.shape) for k, v in weights.items()} == {
        "W_enc": (D_IN, D_SAE),
        "W_dec": (D_SAE, D_IN),
        "b_enc": (D_SAE,),
        "b_dec": (D_IN,),
    }


def manual(x, W_enc, b_enc, W_dec, b_dec, center=True, k=None, threshold=None):
    pre = ((x - b_dec) if center else x) @ W_enc + b_enc
    if k is not None:
        kth = pre.topk(k, dim=-1).values[:, -1:]
        acts = torch.where(pre >= kth, pre.clamp_min(0), 0)
    elif threshold is not None:
        acts = torch.where(pre > threshold, pre, 0)
    else:
        acts = pre.clamp_min(0)
    return acts, acts @ W_dec + b_dec


def random_weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g),
        "W_dec": torch.randn(D_SAE, D_IN, generator=g),
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
        "b_dec": torch.randn(D_IN, generator=g),
    }


def check(sae, x, w, **kwargs):
    acts, recon = manual(x, w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"], **kwargs)
    torch.testing.assert_close(sae.encode_dense(x), acts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sae(x), recon, atol=1e-4, rtol=1e-4)


def test_loads_hand_built_saelens_v6_topk(tmp_path):
    w = random_weights()
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "topk",
                "d_in": D_IN,
                "d_sae": D_SAE,
                "k": K,
                "dtype": "float32",
                "device": "cpu",
                "apply_b_dec_to_input": True,
                "normalize_activations": "none",
                "metadata": {
                    "model_name": "gpt2",
                    "hook_name": "blocks.6.hook_resid_post",
                    "sae_lens_version": "6.5.0",
                },
            }
        )
    )
    sae = load_sae(tmp_path)
    assert sae.cfg.architecture == "topk" and sae.cfg.k == K
    assert sae.cfg.reader == {"name": "openai-community/gpt2", "layer": 6, "site": "resid_post"}
    check(sae, torch.randn(20, D_IN), w, k=K)


def test_loads_hand_built_saelens_v6_jumprelu(tmp_path):
    w = random_weights(1)
    w["threshold"] = torch.rand(D_SAE)
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "jumprelu",
                "d_in": D_IN,
                "d_sae": D_SAE,
                "dtype": "float32",
                "apply_b_dec_to_input": False,
                "normalize_activations": "none",
                "metadata": {"model_name": "gemma-2-2b", "hook_name": "blocks.12.hook_resid_post"},
            }
        )
    )
    sae = load_sae(tmp_path)
    assert sae.cfg.architecture == "jumprelu" and not sae.cfg.apply_b_dec_to_input
    check(sae, torch.randn(20, D_IN) * 2, w, center=False, threshold=w["threshold"])


@pytest.mark.parametrize("act,kwargs", [("relu", {}), ("topk", {"k": K})])
def test_loads_hand_built_saelens_pre6_flat_config(act, kwargs, tmp_path):
    w = random_weights(2)
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "standard",
                "d_in": D_IN,
                "d_sae": D_SAE,
                "dtype": "float32",
                "model_name": "gpt2-small",
                "hook_name": "blocks.8.hook_resid_pre",
                "hook_layer": 8,
                "hook_head_index": None,
                "activation_fn_str": act,
                "activation_fn_kwargs": kwargs,
                "apply_b_dec_to_input": True,
                "finetuning_scaling_factor": False,
                "context_size": 128,
                "normalize_activations": "none",
                "prepend_bos": True,
            }
        )
    )
    sae = load_sae(tmp_path)
    assert sae.cfg.architecture == ("topk" if act == "topk" else "relu")
    # resid_pre of block 8 is the input of block 8, not its output
    assert sae.cfg.reader == {"name": "openai-community/gpt2", "layer": 8, "site": "resid_pre"}
    check(sae, torch.randn(20, D_IN), w, k=kwargs.get("k"))


def sparsify_folder(folder, w, cfg):
    """A sparsify SAE in ``folder``: ``sae.safetensors`` with its tensor names, ``cfg.json``."""
    folder.mkdir()
    save_file(
        {
            "encoder.weight": w["W_enc"].t().contiguous(),
            "encoder.bias": w["b_enc"],
            "W_dec": w["W_dec"],
            "b_dec": w["b_dec"],
        },
        str(folder / "sae.safetensors"),
    )
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


def test_loads_hand_built_sparsify(tmp_path):
    w = random_weights(3)
    cfg = {
        "expansion_factor": 32,
        "normalize_decoder": True,
        "num_latents": D_SAE,
        "k": K,
        "multi_topk": False,
        "skip_connection": False,
        "d_in": D_IN,
    }
    folder = sparsify_folder(tmp_path / "layers.6", w, cfg)
    sae = load_sae(folder)
    assert sae.cfg.architecture == "topk" and sae.cfg.reader["layer"] == 6
    check(sae, torch.randn(20, D_IN), w, k=K)
    with pytest.raises(SaetoolsError, match="choose one of its subfolders: layers.6"):
        load_sae(tmp_path)


def test_sparsify_groupmax_is_refused(tmp_path):
    cfg = {"activation": "groupmax", "k": 8, "num_latents": D_SAE, "d_in": D_IN}
    folder = sparsify_folder(tmp_path / "layers.4", random_weights(), cfg)
    with pytest.raises(SaetoolsError, match="sparsify activation 'groupmax' is not supported"):
        load_sae(folder)


def test_loads_hand_built_dictionary_learning(tmp_path):
    w = random_weights(4)
    standard = tmp_path / "standard"
    standard.mkdir()
    torch.save(
        {
            "bias": w["b_dec"],
            "encoder.weight": w["W_enc"].t().contiguous(),
            "encoder.bias": w["b_enc"],
            "decoder.weight": w["W_dec"].t().contiguous(),
        },
        standard / "ae.pt",
    )
    (standard / "config.json").write_text(
        json.dumps(
            {
                "trainer": {
                    "dict_class": "AutoEncoder",
                    "activation_dim": D_IN,
                    "dict_size": D_SAE,
                    "layer": 3,
                    "lm_name": "EleutherAI/pythia-70m-deduped",
                }
            }
        )
    )
    sae = load_sae(standard)
    assert sae.cfg.architecture == "relu" and sae.cfg.reader["layer"] == 3
    check(sae, torch.randn(20, D_IN), w)

    topk = tmp_path / "topk"
    topk.mkdir()
    torch.save(
        {
            "encoder.weight": w["W_enc"].t().contiguous(),
            "encoder.bias": w["b_enc"],
            "decoder.weight": w["W_dec"].t().contiguous(),
            "b_dec": w["b_dec"],
            "k": torch.tensor(K),
            "threshold": torch.tensor(-1.0),
        },
        topk / "ae.pt",
    )
    (topk / "config.json").write_text(
        json.dumps(
            {"trainer": {"dict_class": "AutoEncoderTopK", "k": K, "layer": 3, "lm_name": "pythia"}}
        )
    )
    sae = load_sae(topk)
    assert sae.cfg.architecture == "topk" and sae.cfg.k == K
    check(sae, torch.randn(20, D_IN), w, k=K)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(SaetoolsError, match="no such SAE folder"):
        load_sae(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaetoolsError, match="not an SAE checkpoint"):
        load_sae(tmp_path / "empty")
    w = random_weights()
    w["W_dec"] = w["W_dec"][:, :-1].contiguous()
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(
        json.dumps({"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": K, "metadata": {}})
    )
    with pytest.raises(SaetoolsError, match=r"'W_dec' has shape \(40, 15\), expected \(40, 16\)"):
        load_sae(tmp_path)
