"""The reader's memory handling: a token budget from free GPU memory, batches that run out of
memory split and retried, and models placed by accelerate's ``device_map``.

GPU figures come from ``benchmarks/speed/gpu_reader.py``; these checks run on the CPU, where a
reader that packs windows like an accelerator is emulated by its ``read_align``.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch

from saetools.errors import SaetoolsError
from saetools.readers.hf import CPU_TOKEN_BUDGET, MAX_TOKEN_BUDGET, HFReader, token_budget_for
from tests.helpers import cli_error

SMOLLM2 = SimpleNamespace(hidden_size=576, intermediate_size=1536, num_attention_heads=9)
LLAMA_8B = SimpleNamespace(hidden_size=4096, intermediate_size=14336, num_attention_heads=32)
GIB = 1 << 30

TEXTS = [
    "A short note.",
    "The committee met on Tuesday to discuss the budget for next year. " * 6,
    "Rain is expected in the north; the south stays dry and warm until the weekend. " * 12,
    "Numbers: one, two, three, four, five, six, seven, eight, nine, ten.",
    "She opened the window, and the smell of cut grass filled the room. " * 3,
]


def test_token_budget_grows_with_free_memory_and_shrinks_with_model_width():
    small = token_budget_for(8 * GIB, SMOLLM2, 512, 2)
    assert small & (small - 1) == 0  # a power of two: like GPUs get like budgets
    assert token_budget_for(16 * GIB, SMOLLM2, 512, 2) == 2 * small
    assert token_budget_for(int(8.1 * GIB), SMOLLM2, 512, 2) == small
    assert token_budget_for(8 * GIB, LLAMA_8B, 512, 2) <= small / 4
    # fp32 needs more bytes per token
    assert token_budget_for(12 * GIB, SMOLLM2, 512, 4) < token_budget_for(12 * GIB, SMOLLM2, 512, 2)


def test_token_budget_for_an_8b_model_on_an_80_gib_gpu_is_tens_of_thousands_of_tokens():
    # 70 GiB left after 16 GB of weights: per token ~0.27 MB of buffers, doubled for slack
    budget = token_budget_for(64 * GIB, LLAMA_8B, 512, 2)
    assert 50_000 < budget < 200_000


def test_token_budget_is_at_least_one_window_and_at_most_the_cap():
    assert token_budget_for(1 << 20, LLAMA_8B, 512, 2) == 512
    assert token_budget_for(1 << 50, SMOLLM2, 512, 2) == MAX_TOKEN_BUDGET


def test_a_cpu_reader_uses_the_cpu_budget_unless_given_one(reader_fp32):
    assert reader_fp32.token_budget == CPU_TOKEN_BUDGET
    # a reader built on a loaded model moves it to its dtype: keep the shared model in fp32
    same = {"tokenizer": reader_fp32.tokenizer, "device": "cpu", "dtype": "float32"}
    given = HFReader(reader_fp32.model, 5, token_budget=777, **same)
    assert given.token_budget == 777
    with pytest.raises(SaetoolsError, match="token_budget must be at least 1, got 0"):
        HFReader(reader_fp32.model, 5, token_budget=0, **same)


class _SmallAccelerator(HFReader):
    """Packs windows as on a GPU; a forward over more than ``limit`` padded tokens raises the
    out-of-memory error CUDA raises."""

    limit = 10**9
    batches: list[int]

    @property
    def read_align(self) -> int:
        return self.chunk_docs

    def forward_windows(self, windows):
        tokens = len(windows) * max(len(w) for w in windows)
        if tokens > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory: {tokens} tokens (emulated)")
        self.batches.append(tokens)
        return super().forward_windows(windows)


def _accelerator_like(reader_fp32, budget: int, limit: int) -> _SmallAccelerator:
    reader = _SmallAccelerator(
        reader_fp32.model,
        5,
        tokenizer=reader_fp32.tokenizer,
        device="cpu",
        dtype="float32",
        outlier_ratio=None,
        token_budget=budget,
    )
    reader.limit, reader.batches = limit, []
    return reader


def test_a_batch_that_runs_out_of_memory_is_split_and_the_budget_halved(reader_fp32):
    roomy = _accelerator_like(reader_fp32, 4096, 10**9)
    expected = list(roomy.iter_activations(TEXTS))
    assert max(roomy.batches) > 300  # several windows shared a forward pass

    tight = _accelerator_like(reader_fp32, 4096, 300)
    with pytest.warns(UserWarning, match=r"ran out of memory; token budget now \d+"):
        got = list(tight.iter_activations(TEXTS))
    assert tight.budget_cuts >= 1 and tight.token_budget < 4096
    assert max(tight.batches) <= 300
    assert [g.tokens for g in got] == [e.tokens for e in expected]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.acts, e.acts, rtol=1e-4, atol=1e-4)


def test_a_single_window_that_does_not_fit_raises_the_out_of_memory_error(reader_fp32):
    reader = _accelerator_like(reader_fp32, 4096, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(torch.cuda.OutOfMemoryError, match="out of memory"):
            list(reader.iter_activations(TEXTS[1:2]))


def test_device_map_loads_through_accelerate_with_the_same_activations(reader_fp32):
    from saetools.readers import load_reader

    placed = load_reader(
        None, 5, dtype="float32", outlier_ratio=None, quiet=True, device_map="auto"
    )
    # with no GPU, accelerate's map puts every module on the CPU (one device: no dispatch hooks)
    assert placed.device_map == "auto"
    assert placed.input_device.type == placed.device.type == "cpu"
    for got, want in zip(
        placed.iter_activations(TEXTS), reader_fp32.iter_activations(TEXTS), strict=True
    ):
        assert torch.equal(got.acts, want.acts)


def test_device_map_needs_a_model_loaded_by_name(reader_fp32):
    with pytest.raises(SaetoolsError, match="device_map applies to a model loaded by name"):
        HFReader(
            reader_fp32.model,
            5,
            tokenizer=reader_fp32.tokenizer,
            dtype="float32",
            device_map="auto",
        )


def test_cli_rejects_an_unknown_device_map(tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "hello"}\n')
    message = cli_error("encode", data, "--out", tmp_path / "s", "--device-map", "everywhere")
    assert message == (
        "--device-map must be auto | balanced | balanced_low_0 | sequential, got 'everywhere'"
    )
