"""SAE architectures: shapes, sparse paths equal dense ones, recovery of a known dictionary."""

from __future__ import annotations

import pytest
import torch

from saetools.sae.activations import cache_from_tensor
from saetools.sae.models import ARCHITECTURES, SAEConfig, _SelectedPreActs, build_sae
from saetools.sae.train import TrainConfig, Trainer, folded_copy, geometric_median

from .helpers import synthetic_dictionary


def random_sae(arch: str, d_in=24, d_sae=96, k=6, tied=False, seed=0):
    torch.manual_seed(seed)
    sae = build_sae(
        SAEConfig(arch, d_in, d_sae, k if arch in ("topk", "batchtopk") else None, tied=tied)
    )
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        sae.b_dec.normal_(0, 0.3)
        if hasattr(sae, "threshold"):
            sae.threshold.uniform_(0.0, 0.5)
    return sae


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_encode_decode_match_dense_formula(arch):
    sae = random_sae(arch)
    x = torch.randn(50, 24)
    codes = sae.encode(x)
    assert codes.values.shape == codes.indices.shape and codes.values.shape[0] == 50
    assert (codes.values >= 0).all()
    dense = codes.to_dense(96)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    if arch == "topk":
        assert codes.values.shape[1] == 6
        kth = pre.topk(6, dim=-1).values[:, -1:]
        expected = torch.where(pre >= kth, pre.clamp_min(0), 0)
    elif arch == "relu":
        expected = pre.clamp_min(0)
    else:
        expected = torch.where(pre > sae.threshold, pre, 0)
    torch.testing.assert_close(dense, expected)
    torch.testing.assert_close(
        sae.decode(codes), dense @ sae.W_dec + sae.b_dec, atol=1e-5, rtol=1e-5
    )


def test_sparse_backward_equals_dense_autograd():
    torch.manual_seed(1)
    x = torch.randn(40, 16, requires_grad=True)
    W = torch.randn(16, 64, requires_grad=True)
    b = torch.randn(64, requires_grad=True)
    pre = x @ W + b
    idx = pre.detach().topk(5, dim=-1).indices
    upstream = torch.randn(40, 5)
    # dense reference
    (pre.gather(1, idx) * upstream).sum().backward()
    ref = [t.grad.clone() for t in (x, W, b)]
    for t in (x, W, b):
        t.grad = None
    selected = _SelectedPreActs.apply(pre.detach().gather(1, idx), x, W, b, idx)
    (selected * upstream).sum().backward()
    for got, want in zip((x.grad, W.grad, b.grad), ref, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_topk_training_forward_matches_encode_and_has_gradients():
    sae = random_sae("topk")
    x = torch.randn(64, 24)
    dead = torch.zeros(96, dtype=torch.bool)
    dead[:40] = True
    out = sae.training_forward(x, dead)
    out.loss.backward()
    assert out.aux_loss > 0
    for name, p in sae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # bf16 selection may swap near-ties; the reconstruction error is what must agree
    ref = ((sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()
    assert abs(out.fvu.item() - ref) < 0.02 * ref


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_folded_copy_takes_raw_inputs(arch):
    sae = random_sae(arch)
    scale = 0.37
    folded = folded_copy(sae, scale)
    x = torch.randn(30, 24) * 5
    expected = sae(x * scale) / scale
    torch.testing.assert_close(folded(x), expected, atol=1e-4, rtol=1e-4)


def test_geometric_median_resists_outliers():
    points = torch.cat([torch.randn(200, 3) * 0.1, torch.full((20, 3), 100.0)])
    median = geometric_median(points)
    assert median.norm() < 0.5 < points.mean(0).norm()


def _train(arch, tmp_path, epochs=5.0, **overrides):
    x, dictionary = synthetic_dictionary(60_000)
    cache = cache_from_tensor(x, tmp_path / "cache")
    cfg = TrainConfig(
        latents=384,
        k=4,
        architecture=arch,
        epochs=epochs,
        batch_size=1024,
        warmup_steps=20,
        dead_tokens=20_000,
        **overrides,
    )
    result = Trainer(cfg, cache, tmp_path / "out", progress=False).train()
    return result, dictionary


def recovered_fraction(sae, dictionary, threshold=0.9) -> float:
    learned = sae.W_dec.detach()
    learned = learned / learned.norm(dim=-1, keepdim=True)
    return float(((dictionary @ learned.T).max(dim=1).values >= threshold).float().mean())


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_training_recovers_known_dictionary(arch, tmp_path):
    result, dictionary = _train(arch, tmp_path)
    assert recovered_fraction(result.sae, dictionary) >= 0.9
    assert result.fvu < 0.2
    assert result.l0 == pytest.approx(4, abs=0.6)


@pytest.mark.parametrize("arch,tied", [("jumprelu", False), ("relu", False), ("relu", True)])
def test_penalised_architectures_train_to_sparse_codes(arch, tied, tmp_path):
    result, dictionary = _train(arch, tmp_path / "on", epochs=4.0, tied=tied)
    unpenalised, _ = _train(arch, tmp_path / "off", epochs=4.0, tied=tied, sparsity_coeff=0.0)
    assert result.fvu < 0.6
    assert result.l0 < 0.8 * unpenalised.l0  # the sparsity penalty does its job
    assert recovered_fraction(result.sae, dictionary, 0.8) >= 0.5


def test_checkpoint_resume_gives_the_same_weights(tmp_path, monkeypatch):
    x, _ = synthetic_dictionary(20_000)
    cache = cache_from_tensor(x, tmp_path / "cache")
    cfg = TrainConfig(
        latents=128,
        k=4,
        epochs=3,
        batch_size=1000,
        checkpoint_every=7,
        warmup_steps=5,
        dead_tokens=5000,
    )
    clean = Trainer(cfg, cache, tmp_path / "clean", progress=False).train()

    interrupted = Trainer(cfg, cache, tmp_path / "run", progress=False)
    original = interrupted.batches

    def stop_after_16():
        for i, batch in enumerate(original()):
            if i == 16:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(interrupted, "batches", stop_after_16)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    assert (tmp_path / "run" / "checkpoint" / "state.json").exists()

    resumed_trainer = Trainer(cfg, cache, tmp_path / "run", progress=False)
    resumed = resumed_trainer.train(resume=True)
    assert resumed.steps == clean.steps == 60
    for name in ("W_enc", "b_enc", "b_dec"):
        assert torch.equal(getattr(resumed.sae, name), getattr(clean.sae, name)), name
    assert torch.equal(resumed.sae.W_dec, clean.sae.W_dec)
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_resume_with_other_settings_is_refused(tmp_path, monkeypatch):
    from saetools.errors import SaetoolsError

    x, _ = synthetic_dictionary(8_000)
    cache = cache_from_tensor(x, tmp_path / "cache")
    cfg = TrainConfig(latents=64, k=4, epochs=2, batch_size=1000, checkpoint_every=3)
    trainer = Trainer(cfg, cache, tmp_path / "run", progress=False)
    trainer.initialise()
    trainer.save_checkpoint()
    other = TrainConfig(latents=64, k=8, epochs=2, batch_size=1000, checkpoint_every=3)
    with pytest.raises(SaetoolsError, match=r"other settings \(k\)"):
        Trainer(other, cache, tmp_path / "run", progress=False).train(resume=True)


def test_python_api_trains_from_a_list_of_texts(tmp_path, reader_fp32, example_texts):
    import saetools

    result = saetools.train_sae(
        example_texts[:40],
        tmp_path / "sae",
        reader=reader_fp32,
        latents=256,
        k=16,
        epochs=2,
        batch_size=512,
        progress=False,
    )
    loaded = saetools.load_sae(tmp_path / "sae")
    assert loaded.cfg.reader["layer"] == reader_fp32.layer == 5
    assert loaded.cfg.d_sae == 256 and result.l0 == pytest.approx(16, abs=0.5)
    assert 0 < result.fvu < 1
