"""HFReader: residual-stream activations of a Hugging Face causal LM at one layer.

A forward hook on the chosen block captures its output and stops the forward pass there, so no
block above it ever runs. Documents are tokenised without special tokens, cut into windows that
overlap, and each window is prefixed by one sink token (BOS, else EOS) whose position is dropped:
the first position of a sequence carries norms ~100x the rest. A few other tokens behave like that
sink too (SmolLM2: ~0.03% of tokens, norms of 2,000-27,000 against a median of ~170); tokens
whose norm exceeds ``outlier_ratio`` times the median token norm of a fixed calibration text
(read once per reader) are dropped as well (never all tokens of a part), since one of them
outweighs thousands of ordinary tokens in any reconstruction loss; the limit depends on nothing
else that is read, so a document's vectors do not depend on its neighbours. On an accelerator,
windows are sorted by length and packed into batches under a token budget, so there is little
padding; on a CPU each window is its own forward pass, so the values do not depend on the batch
either (a batched matmul rounds a row differently with other rows beside it). The token budget
defaults to what the GPU's free memory holds (:func:`token_budget_for`); a batch that still runs
out of memory is split in half and retried, and the budget stays halved. With ``device_map``
(accelerate), a model larger than one GPU is spread over several in one process; the SAE then
runs on the GPU that holds the hooked block.

Memory is bounded by the batch, not the document: texts longer than ``BLOCK_CHARS`` are
tokenised block by block (cut at whitespace), documents longer than ``stream_tokens`` tokens are
read a group of windows at a time and yielded in parts (:meth:`HFReader.iter_parts`), and
``max_tokens`` cuts documents (counted in ``cut_docs``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SaetoolsError
from ..options import Source
from .base import TokenActivations, resolve_device, resolve_dtype
from .hooks import DEFAULT_SITE, hook_module


class _StopForward(Exception):
    """Raised by the capture hook to end the forward pass after the chosen layer."""


def find_layers(model: nn.Module) -> nn.ModuleList:
    """Return the list of transformer blocks of a causal LM (Llama, GPT-2, NeoX, Gemma, ...)."""
    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(
        model.config, "n_layer", None
    )
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        module = model
        for attr in path.split("."):
            module = getattr(module, attr, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return module
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise SaetoolsError(f"cannot find the transformer blocks of {type(model).__name__}")


def plan_windows(
    n_tokens: int, window: int, overlap: int, truncate: bool
) -> list[tuple[int, int, int]]:
    """Cut ``n_tokens`` into windows of at most ``window - 1`` tokens (one slot is the sink).

    Returns ``(start, end, keep_from)``: the window covers tokens ``start:end`` and contributes
    tokens ``keep_from:end``, so every token is kept exactly once, from the window in which it has
    the most left context.
    """
    content = window - 1
    if content < 1:
        raise SaetoolsError(f"window must be at least 2 tokens, got {window}")
    if not 0 <= overlap < content:
        raise SaetoolsError(f"overlap must be in [0, {content - 1}], got {overlap}")
    if truncate or n_tokens <= content:
        return [(0, min(n_tokens, content), 0)]
    stride = content - overlap
    plans, start = [], 0
    while True:
        end = min(start + content, n_tokens)
        plans.append((start, end, 0 if start == 0 else start + overlap))
        if end == n_tokens:
            return plans
        start += stride


def pack_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Group item indices into batches, longest first, with ``rows * longest <= token_budget``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


CPU_TOKEN_BUDGET = 8192
"""Token budget where no GPU memory figure applies (a CPU reads one window at a time anyway)."""

MAX_TOKEN_BUDGET = 1 << 20
"""Upper bound of an automatic token budget (past it, a reader's chunks are the limit)."""


def token_budget_for(
    free_bytes: int, config, window: int, dtype_bytes: int, share: float = 0.5
) -> int:
    """Tokens per forward pass that fit in ``share`` of ``free_bytes`` of accelerator memory.

    A block's peak per token, with no gradients and no KV cache, is bounded by its residual,
    attention and MLP buffers, ``dtype_bytes * (6 * hidden + 3 * intermediate)``, plus one
    fp32 row of attention scores per head (``4 * heads * window``, eager attention), doubled
    for the allocator's slack; rounded down to a power of two, so that readers on like GPUs
    with slightly different free memory batch alike (a packed batch's values depend on its
    rows). Never below one window, never above :data:`MAX_TOKEN_BUDGET`.
    """
    hidden = int(config.hidden_size)
    intermediate = int(getattr(config, "intermediate_size", None) or 4 * hidden)
    heads = int(getattr(config, "num_attention_heads", None) or 1)
    per_token = 2 * (dtype_bytes * (6 * hidden + 3 * intermediate) + 4 * heads * window)
    fits = int(free_bytes * share) // per_token
    if fits >= 1:
        fits = 1 << (fits.bit_length() - 1)
    return int(max(window, min(MAX_TOKEN_BUDGET, fits)))


class HFReader:
    """Token activations of a causal LM at one hook point.

    ``model`` is a Hugging Face id, a local directory, or (with ``gguf_file``) a directory holding
    a GGUF file; an already-loaded model and tokenizer may be passed instead. Activations are
    taken at ``site`` of block ``layer`` (0-based; see :mod:`saetools.readers.hooks`): by
    default its output, equal to ``output_hidden_states[layer + 1]``. ``token_budget`` caps the
    padded tokens of one forward pass on an accelerator (None: from its free memory,
    :func:`token_budget_for`); ``device_map`` (accelerate's) spreads a model loaded by name over
    several GPUs, and the activations come out on the GPU holding the hooked block.
    """

    kind = "hf"
    stream_tokens = 8192
    """Documents longer than this many tokens are read and yielded in parts."""
    chunk_tokens = 65536
    """At most this many tokens of short documents are read together on an accelerator (on a
    CPU, where each window is read alone, a group holds at most one window's worth of tokens,
    so documents flow on as they are read)."""
    chunk_docs = 256
    """Documents tokenised and batched together. On an accelerator a chunk's windows share
    batches, so a caller that wants reproducible values reads in chunks aligned to multiples of
    this from the first document; on a CPU each window is read alone and alignment is moot."""

    def __init__(
        self,
        model: str | Path | nn.Module,
        layer: int | None = None,
        *,
        site: str = DEFAULT_SITE,
        tokenizer=None,
        gguf_file: str | None = None,
        dtype: str | torch.dtype = Source.reader_dtype,
        device: str | None = Source.device,
        window: int = Source.window,
        overlap: int = Source.overlap,
        truncate: bool = Source.truncate,
        token_budget: int | None = None,
        device_map: str | dict | None = None,
        outlier_ratio: float | None = Source.outlier_ratio,
        max_tokens: int | None = Source.max_tokens_per_doc,
        name: str | None = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
    ) -> None:
        if device_map is not None and isinstance(model, nn.Module):
            raise SaetoolsError("device_map applies to a model loaded by name or path")
        if token_budget is not None and int(token_budget) < 1:
            raise SaetoolsError(f"token_budget must be at least 1, got {token_budget}")
        self.device = resolve_device("auto" if device_map is not None else device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.device_map = device_map
        if isinstance(model, nn.Module):
            if tokenizer is None:
                raise SaetoolsError("a tokenizer is required with a loaded model")
            self.model, self.tokenizer = model, tokenizer
            self.name = name or getattr(model.config, "_name_or_path", type(model).__name__)
        else:
            self.name = name or (f"{model}/{gguf_file}" if gguf_file else str(model))
            if layer is not None and not gguf_file:  # a bad layer fails before the weights load
                _check_layer(int(layer), _configured_layers(Path(model)), self.name)
            self.model, self.tokenizer = _load_model(
                str(model), gguf_file, self.dtype, revision, local_files_only, device_map
            )
        if device_map is None:
            self.model.to(device=self.device, dtype=self.dtype)
        self.model.eval()
        self.blocks = find_layers(self.model)
        self.n_layers = len(self.blocks)
        self.layer = self.n_layers // 2 if layer is None else int(layer)
        _check_layer(self.layer, self.n_layers, self.name)
        # inputs go where the embeddings are; activations (and the SAE) are where the block is
        self.input_device = self.device
        if device_map is not None:
            self.input_device = _parameter_device(self.model.get_input_embeddings(), self.device)
            self.device = _parameter_device(self.blocks[self.layer], self.device)
        self.d_model = int(self.model.config.hidden_size)
        self.window, self.overlap, self.truncate = int(window), int(overlap), bool(truncate)
        plan_windows(1, self.window, self.overlap, self.truncate)  # validates window/overlap
        self.token_budget = (
            int(token_budget) if token_budget is not None else self._automatic_token_budget()
        )
        self.budget_cuts = 0  # times a batch ran out of memory and the budget was halved
        self.outlier_ratio = outlier_ratio
        if max_tokens is not None and max_tokens < 1:
            raise SaetoolsError(f"max_tokens must be at least 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.cut_docs = 0  # documents cut at max_tokens so far
        self._outlier_limit: float | None = None
        tok = self.tokenizer
        self.sink_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = 0 if pad is None else pad
        if self.sink_id is None:
            raise SaetoolsError(f"{self.name}: tokenizer has neither a BOS nor an EOS token")
        self._captured: torch.Tensor | None = None
        self.site = site
        self._hooked = hook_module(self.blocks[self.layer], site)

    def describe(self) -> dict:
        """Identify the reader: name, layer, dtype, windowing."""
        return {
            "kind": self.kind,
            "name": self.name,
            "layer": self.layer,
            "d_model": self.d_model,
            "dtype": str(self.dtype).removeprefix("torch."),
            "window": self.window,
            "overlap": self.overlap,
            "truncate": self.truncate,
            "outlier_ratio": self.outlier_ratio,
            "outlier_rule": "calibration",
            "max_tokens": self.max_tokens,
            # only where it is not the default, so stores made before hook sites existed keep
            # their identity
            **({"site": self.site} if self.site != DEFAULT_SITE else {}),
        }

    def render_chat(self, messages: list[dict]) -> str:
        """A conversation as this model reads it: its tokenizer's chat template, or ``role:
        content`` blocks when it has none."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        from ..corpus import plain_chat

        return plain_chat(messages)

    def _capture(self, module, args, output):
        self._captured = output[0] if isinstance(output, tuple) else output
        raise _StopForward

    def _capture_input(self, module, args, kwargs):
        self._captured = args[0] if args else kwargs["hidden_states"]
        raise _StopForward

    @torch.inference_mode()
    def forward_windows(self, windows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Run token-id windows (each already starting with the sink) as one right-padded batch.

        Returns the captured block output ``[batch, longest, d_model]``.
        """
        longest = max(len(w) for w in windows)
        ids = torch.full((len(windows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), longest), dtype=torch.long)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = torch.as_tensor(window, dtype=torch.long)
            mask[row, : len(window)] = 1
        self._captured = None
        # the hook lives only for this call, so readers sharing one model do not interfere
        module, kind = self._hooked
        if kind == "pre":
            handle = module.register_forward_pre_hook(self._capture_input, with_kwargs=True)
        else:
            handle = module.register_forward_hook(self._capture)
        try:
            self.model(
                input_ids=ids.to(self.input_device),
                attention_mask=mask.to(self.input_device),
                use_cache=False,
            )
        except _StopForward:
            pass
        finally:
            handle.remove()
        if self._captured is None:
            raise RuntimeError("the capture hook did not fire")
        return self._captured

    def tokenize(self, text: str) -> tuple[list[int], np.ndarray]:
        """Token ids (no special tokens) and their character offsets ``[n, 2]``."""
        return self.tokenize_many([text])[0]

    def tokenize_many(self, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray]]:
        """:meth:`tokenize` for many texts in one (parallel, Rust-side) tokenizer call."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [
            (list(ids), np.asarray(offsets, dtype=np.int32).reshape(-1, 2))
            for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        ]

    def tokenize_long(self, text: str, limit: int | None = None) -> tuple[list[int], np.ndarray]:
        """:meth:`tokenize` of a long text block by block (``BLOCK_CHARS`` characters, cut at
        whitespace), stopping once ``limit`` tokens are read: memory grows with the tokens kept,
        not with the text."""
        ids: list[int] = []
        offsets: list[np.ndarray] = []
        lo = 0
        while lo < len(text) and (limit is None or len(ids) < limit):
            hi = min(lo + BLOCK_CHARS, len(text))
            if hi < len(text):
                cut = max(text.rfind(" ", lo, hi), text.rfind("\n", lo, hi))
                hi = cut if cut > lo else hi
            block_ids, block_offsets = self.tokenize_many([text[lo:hi]])[0]
            ids.extend(block_ids)
            offsets.append(block_offsets + lo)
            lo = hi
        joined = np.concatenate(offsets) if offsets else np.zeros((0, 2), np.int32)
        return ids, joined.astype(np.int32)

    def _tokenized(self, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray]]:
        """Token ids and offsets of each text, cut at ``max_tokens`` (counted in ``cut_docs``)."""
        limit = self.max_tokens
        short = [i for i, t in enumerate(texts) if len(t) <= BLOCK_CHARS]
        out: list = [None] * len(texts)
        for i, item in zip(short, self.tokenize_many([texts[i] for i in short]), strict=True):
            out[i] = item
        for i, text in enumerate(texts):
            if out[i] is None:
                out[i] = self.tokenize_long(text, None if limit is None else limit + 1)
        if limit is not None:
            for i, (ids, offs) in enumerate(out):
                if len(ids) > limit:
                    out[i] = (ids[:limit], offs[:limit])
                    self.cut_docs += 1
        return out

    @property
    def outlier_limit(self) -> float | None:
        """Norm above which a token counts as a sink-like outlier: ``outlier_ratio`` times the
        median token norm of :data:`CALIBRATION_TEXT` (None: keep everything)."""
        if not self.outlier_ratio:
            return None
        if self._outlier_limit is None:
            ids, _ = self.tokenize(CALIBRATION_TEXT)
            hidden = self.forward_windows([[self.sink_id] + ids[: self.window - 1]])[0, 1:]
            median = float(hidden.float().norm(dim=-1).median())
            self._outlier_limit = median * self.outlier_ratio
        return self._outlier_limit

    def iter_parts(
        self, texts: Sequence[str], progress: bool = False, docs_per_step: int | None = None
    ) -> Iterator[tuple[int, TokenActivations, bool]]:
        """Yield ``(doc, part, last)`` in document order: each document's token activations in
        one part, or, for documents longer than ``stream_tokens``, in several consecutive parts
        (``last`` marks a document's final part), so memory is bounded by the batch."""
        from tqdm.auto import tqdm

        docs_per_step = docs_per_step or self.chunk_docs
        bar = tqdm(total=len(texts), desc="reading", unit="doc", disable=not progress)
        self.outlier_limit  # noqa: B018 - tokenises: done before the worker starts
        starts = range(0, len(texts), docs_per_step)
        # the next chunk is tokenised on a worker thread while this one runs through the model
        # (fast tokenizers release the GIL), so the model does not wait for the tokenizer
        with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as worker:
            ahead = None
            for lo in starts:
                chunk = texts[lo : lo + docs_per_step]
                tokenized = ahead.result() if ahead is not None else self._tokenized(chunk)
                following = texts[lo + docs_per_step : lo + 2 * docs_per_step]
                ahead = worker.submit(self._tokenized, following) if following else None
                for doc, part, last in self._read_chunk(chunk, tokenized):
                    yield lo + doc, part, last
                bar.update(len(chunk))
        bar.close()

    def iter_activations(
        self, texts: Sequence[str], progress: bool = False, docs_per_step: int | None = None
    ) -> Iterator[TokenActivations]:
        """Yield the token activations of each text, in order (see :class:`TokenActivations`);
        a long document's parts are joined (use :meth:`iter_parts` to bound memory)."""
        parts: list[TokenActivations] = []
        for _, part, last in self.iter_parts(texts, progress, docs_per_step):
            parts.append(part)
            if last:
                yield parts[0] if len(parts) == 1 else join_parts(parts)
                parts = []

    def _read_chunk(
        self, texts: Sequence[str], tokenized
    ) -> Iterator[tuple[int, TokenActivations, bool]]:
        group: list[int] = []
        size = 0
        limit = self.chunk_tokens if self.read_align > 1 else self.window
        for doc, (ids, _) in enumerate(tokenized):
            if len(ids) > self.stream_tokens:
                yield from self._read_short(texts, tokenized, group)
                group, size = [], 0
                yield from self._read_long(doc, texts[doc], tokenized[doc])
                continue
            if group and size + len(ids) > limit:
                yield from self._read_short(texts, tokenized, group)
                group, size = [], 0
            group.append(doc)
            size += len(ids)
        yield from self._read_short(texts, tokenized, group)

    def _windows_of(self, ids) -> list[tuple[int, int, int]]:
        return plan_windows(len(ids), self.window, self.overlap, self.truncate)

    def _run(self, items: list[tuple[Sequence[int], int, int, int]]) -> list[torch.Tensor]:
        """Activations of window items ``(ids, start, end, keep_from)``, the kept tokens only.

        A batch that runs out of accelerator memory is split in half and retried (the budget
        stays halved for what follows); a single window that does not fit re-raises."""
        pieces: list = [None] * len(items)
        lengths = [end - start + 1 for _, start, end, _ in items]
        queue = self._batches(lengths)
        while queue:
            batch = queue.pop(0)
            inputs = [[self.sink_id] + list(items[w][0][items[w][1] : items[w][2]]) for w in batch]
            try:
                hidden = self.forward_windows(inputs)  # stays on the reader's device
            except torch.cuda.OutOfMemoryError:
                if len(batch) == 1:
                    raise
                self._halve_budget(sum(lengths[w] for w in batch))
                half = len(batch) // 2
                queue[:0] = [batch[:half], batch[half:]]
                continue
            for row, w in enumerate(batch):
                _, start, end, keep = items[w]
                pieces[w] = hidden[row, 1 + keep - start : 1 + end - start]
        return pieces

    def _automatic_token_budget(self) -> int:
        """:func:`token_budget_for` the free memory of the reader's GPUs (the least free one
        when the model is spread over several); :data:`CPU_TOKEN_BUDGET` elsewhere."""
        if self.device.type != "cuda":
            return CPU_TOKEN_BUDGET
        devices = {p.device for p in self.model.parameters() if p.device.type == "cuda"}
        free = min(torch.cuda.mem_get_info(d)[0] for d in devices or {self.device})
        dtype_bytes = torch.empty((), dtype=self.dtype).element_size()
        return token_budget_for(free, self.model.config, self.window, dtype_bytes)

    def _halve_budget(self, tokens: int) -> None:
        """After an out-of-memory batch of ``tokens``: free the cache, halve the budget."""
        import warnings

        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.token_budget = max(self.window, min(self.token_budget, tokens) // 2)
        self.budget_cuts += 1
        warnings.warn(
            f"{self.name}: a batch of {tokens:,} tokens ran out of memory; "
            f"token budget now {self.token_budget:,}",
            stacklevel=2,
        )

    @property
    def read_align(self) -> int:
        """Documents a read must start on (counted from document 0) for its values to equal one
        long read: 1 on a CPU, where each window is read alone, else :attr:`chunk_docs`."""
        return 1 if self.device.type == "cpu" else self.chunk_docs

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Windows packed under the token budget on an accelerator; one window per forward on a
        CPU, where a batched matmul rounds differently with the rows beside it (bf16 and fp32
        alike) and one window already fills the cores, so a document's vectors never depend on
        the documents read with it (same speed, measured on 2 cores)."""
        if self.read_align == 1:
            return [[i] for i in range(len(lengths))]
        return pack_batches(lengths, self.token_budget)

    def _part(self, text: str, acts: torch.Tensor, offs: np.ndarray) -> TokenActivations:
        """Activations with outlier tokens dropped (never all of them), and their spans."""
        limit = self.outlier_limit
        if limit is not None and acts.shape[0]:
            keep = acts.float().norm(dim=-1) <= limit
            if bool(keep.any()) and not bool(keep.all()):
                acts, offs = acts[keep], offs[keep.cpu().numpy()]
        return TokenActivations(acts, [text[s:e] for s, e in offs], offs)

    def _read_short(self, texts, tokenized, docs: list[int]):
        if not docs:
            return
        items, owner = [], []
        for doc in docs:
            ids = tokenized[doc][0]
            for start, end, keep in self._windows_of(ids):
                items.append((ids, start, end, keep))
                owner.append(doc)
        pieces = self._run(items)
        w = 0
        for doc in docs:
            parts = []
            while w < len(items) and owner[w] == doc:
                parts.append(pieces[w])
                pieces[w] = None
                w += 1
            acts = torch.cat(parts) if len(parts) > 1 else parts[0].clone()
            offs = tokenized[doc][1][: acts.shape[0]]
            yield doc, self._part(texts[doc], acts, offs), True

    def _read_long(self, doc: int, text: str, tokenized):
        ids, offsets = tokenized
        windows = self._windows_of(ids)
        per_group = max(1, self.token_budget // self.window)
        done = 0
        for g in range(0, len(windows), per_group):
            group = windows[g : g + per_group]
            pieces = self._run([(ids, start, end, keep) for start, end, keep in group])
            acts = torch.cat(pieces)
            offs = offsets[done : done + acts.shape[0]]
            done += acts.shape[0]
            yield doc, self._part(text, acts, offs), g + per_group >= len(windows)


def join_parts(parts: Sequence[TokenActivations]) -> TokenActivations:
    """One document's parts joined into one :class:`TokenActivations`."""
    return TokenActivations(
        torch.cat([p.acts for p in parts]),
        [t for p in parts for t in p.tokens],
        np.concatenate([p.offsets for p in parts]),
    )


BLOCK_CHARS = 200_000
"""Texts longer than this are tokenised block by block."""

CALIBRATION_TEXT = (
    "The library opens at nine in the morning and closes at six in the evening. Visitors can "
    "borrow up to ten books at a time, and most loans last three weeks. The reading room on the "
    "second floor is quiet, with long wooden tables and lamps at every seat. Children have their "
    "own corner with picture books, puzzles and a small stage for story hour on Saturdays. In "
    "recent years the library has added computers, a printer and free wireless access, and "
    "volunteers teach short classes on writing a letter of application, using a spreadsheet or "
    "finding an old newspaper article. Many people come simply to sit somewhere warm, read the "
    "paper and talk with a neighbour; the staff say that this, too, is part of the job."
)
"""Ordinary prose whose median token norm sets the outlier limit of a reader."""


def _configured_layers(folder: Path) -> int | None:
    """``num_hidden_layers`` from a local model folder's ``config.json`` (None if unknown)."""
    import json

    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        value = value.get("num_hidden_layers")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _check_layer(layer: int, n_layers: int | None, name: str) -> None:
    """A one-line error when ``layer`` is not a block index of a model with ``n_layers``."""
    if n_layers is not None and not 0 <= layer < n_layers:
        raise SaetoolsError(
            f"layer {layer} out of range: {name} has {n_layers} layers (0-{n_layers - 1})"
        )


def _parameter_device(module: nn.Module, default: torch.device) -> torch.device:
    """Where ``module`` runs: accelerate's execution device when it dispatched the module (its
    weights may sit elsewhere until then), else its first parameter's device, else ``default``."""
    hook = getattr(module, "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    for param in module.parameters():
        return param.device
    return default


def _load_model(model: str, gguf_file, dtype, revision, local_files_only, device_map=None):
    """Load a causal LM and its tokenizer; errors become one-line SaetoolsErrors.
    ``device_map`` (accelerate's: "auto", "balanced", or a module-to-device dict) places the
    weights as they load."""
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if local_files_only is None:
        local_files_only = Path(model).exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
    kwargs = {"revision": revision, "local_files_only": local_files_only}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    load = {"device_map": device_map} if device_map is not None else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, **kwargs, **load)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SaetoolsError(f"cannot load reader model '{model}': {first}") from None
    return lm, tokenizer
