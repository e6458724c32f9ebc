"""Readers take activations where the hook point says: tiny random-weight Llama- and
Gemma-2-shaped models (built from transformers' config classes) read at resid_pre, resid_post,
attn_out and mlp_out, compared with ``output_hidden_states`` and with the block's own modules."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoTokenizer,
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from saetools.readers.defaults import convert_gguf, smollm2_gguf_path
from saetools.readers.hf import HFReader

TEXT = "The quick brown fox jumps over the lazy dog, and then it naps in the afternoon sun."
LAYER = 1


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(convert_gguf(smollm2_gguf_path(), quiet=True))


def tiny_model(family: str, vocab: int):
    torch.manual_seed(0)
    common = dict(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        config = Gemma2Config(**common, head_dim=8, sliding_window=64)
        config._attn_implementation = "eager"
        model = Gemma2ForCausalLM(config)
    return model.float().eval()


def read(model, tokenizer, site: str, layer: int = LAYER) -> torch.Tensor:
    reader = HFReader(
        model,
        layer,
        site=site,
        tokenizer=tokenizer,
        dtype="float32",
        device="cpu",
        outlier_ratio=None,
    )
    (item,) = list(reader.iter_activations([TEXT]))
    return item.acts


def reference(model, tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    sink = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.tensor([[sink] + ids])
    with torch.no_grad():
        out = model(input_ids=input_ids, output_hidden_states=True, use_cache=False)
    return [h[0, 1:] for h in out.hidden_states]  # the sink position is dropped, as readers do


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_every_site_reads_the_right_activations(family, tokenizer):
    model = tiny_model(family, len(tokenizer))
    hidden = reference(model, tokenizer)
    close = dict(atol=1e-4, rtol=1e-4)
    # resid_post L is output_hidden_states[L + 1]; resid_pre L is output_hidden_states[L]
    torch.testing.assert_close(read(model, tokenizer, "resid_post"), hidden[LAYER + 1], **close)
    torch.testing.assert_close(read(model, tokenizer, "resid_pre"), hidden[LAYER], **close)
    torch.testing.assert_close(read(model, tokenizer, "resid_pre", 0), hidden[0], **close)
    assert not torch.allclose(hidden[LAYER], hidden[LAYER + 1])

    attn = read(model, tokenizer, "attn_out")
    mlp = read(model, tokenizer, "mlp_out")
    # what the two sublayers add is exactly the change of the residual stream across the block
    torch.testing.assert_close(attn + mlp, hidden[LAYER + 1] - hidden[LAYER], **close)
    # and the MLP output is the block's MLP applied to the residual stream after attention
    block = model.model.layers[LAYER]
    mid = hidden[LAYER] + attn
    with torch.no_grad():
        if family == "llama":
            expected = block.mlp(block.post_attention_layernorm(mid))
        else:  # Gemma 2 normalises before and after the MLP
            expected = block.post_feedforward_layernorm(
                block.mlp(block.pre_feedforward_layernorm(mid))
            )
    torch.testing.assert_close(mlp, expected, **close)
    assert attn.abs().sum() > 0 and mlp.abs().sum() > 0


def test_a_non_default_site_is_part_of_the_reader_identity(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    post = HFReader(model, 1, tokenizer=tokenizer, dtype="float32", device="cpu")
    assert "site" not in post.describe()  # stores made before hook sites keep their identity
    mlp = HFReader(model, 1, site="mlp_out", tokenizer=tokenizer, dtype="float32", device="cpu")
    assert mlp.describe()["site"] == "mlp_out"
