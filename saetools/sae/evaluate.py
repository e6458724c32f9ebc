"""How much of the reader's behaviour an SAE keeps: next-token loss with the layer's output
replaced by its reconstruction (fraction of loss recovered)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F


@contextmanager
def replaced_block_output(reader, replace):
    """Run the full model with the activations at the reader's hook point (its ``site`` of block
    ``reader.layer``) passed through ``replace``."""
    from ..readers.hooks import hook_module

    module, kind = hook_module(reader.blocks[reader.layer], getattr(reader, "site", "resid_post"))

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        new = replace(hidden)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    def pre_hook(module, args, kwargs):
        if args:
            return (replace(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": replace(kwargs["hidden_states"])}

    if kind == "pre":
        handle = module.register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:
        handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def loss_recovered(reader, sae, texts: Sequence[str], max_tokens: int = 256) -> dict[str, float]:
    """Next-token cross-entropy of the reader with the layer intact, replaced by the SAE's
    reconstruction, and zero-ablated; ``fraction`` = (zero - sae) / (zero - clean).

    Each text is cut to ``max_tokens`` and prefixed with the sink token, whose position keeps its
    original activation (the SAE was not trained on it).
    """
    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    count = 0
    device = reader.device
    for text in texts:
        ids, _ = reader.tokenize(text)
        ids = [reader.sink_id] + ids[: max_tokens - 1]
        if len(ids) < 3:
            continue
        inputs = torch.tensor([ids], device=device)
        targets = inputs[0, 1:]

        def keep_sink(hidden, fn):
            out = hidden.clone()
            out[:, 1:] = fn(hidden[:, 1:])
            return out

        modes = {
            "clean": lambda h: h,
            "sae": lambda h: keep_sink(
                h, lambda x: sae(x.float().reshape(-1, x.shape[-1])).reshape(x.shape).to(x.dtype)
            ),
            "zero": lambda h: keep_sink(h, torch.zeros_like),
        }
        for name, fn in modes.items():
            with replaced_block_output(reader, fn):
                logits = reader.model(input_ids=inputs, use_cache=False).logits[0, :-1]
            totals[name] += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        count += len(targets)
    result = {name: value / max(count, 1) for name, value in totals.items()}
    gap = result["zero"] - result["clean"]
    result["fraction"] = (result["zero"] - result["sae"]) / gap if gap > 0 else float("nan")
    result["tokens"] = count
    return result


def evaluate_on_data(sae_folder, data, source, *, max_docs=None, progress=True) -> dict:
    """FVU, L0 and never-firing share of the SAE in ``sae_folder`` on the documents of ``data``
    (the first ``max_docs``), read by ``source``'s reader (default: the SAE's own)."""
    from ..corpus import read_corpus
    from .io import check_compatible, load_sae
    from .train import evaluate_sae

    sae = load_sae(sae_folder)
    texts = read_corpus(data, source.field, **source.corpus_options).texts
    texts = texts[:max_docs] if max_docs else texts
    reader = source.open_reader(sae.cfg.reader, progress=progress)
    check_compatible(sae, reader, sae_folder)
    items = reader.iter_activations(texts, progress=progress)
    batches = (item.acts.to("cpu").float() for item in items)
    return evaluate_sae(sae, batches, sae.cfg.d_sae)
