"""Harvest-and-train: activations are read and consumed buffer by buffer, never cached whole.

The reader runs over the documents in order, a chunk of ``reader.chunk_docs`` documents at a
time, until a buffer holds ``buffer_tokens`` rows; the buffer is shuffled with a generator seeded
by its index and trained on as batches (the rows left over after the last full batch are dropped).
A checkpoint after every buffer records the document where the next buffer starts, so a stopped
run resumes there and, because buffers start on chunk boundaries, reads exactly the values an
uninterrupted run would: the result is identical. The documents are read again from the first
when a run asks for more tokens than they hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..errors import SaetoolsError
from .activations import corpus_fingerprint
from .config import TrainConfig
from .train import Trainer

EVAL_TOKENS = 65_536
"""Rows read after the last training buffer to measure the final FVU, L0 and dead latents."""


class ActivationStream:
    """A reader over a document sequence, producing buffers of token activations on demand."""

    def __init__(
        self, reader, texts: Sequence[str], buffer_tokens: int = 262_144, progress: bool = False
    ) -> None:
        if len(texts) == 0:
            raise SaetoolsError("nothing to train on: no documents")
        if buffer_tokens < 1:
            raise SaetoolsError(f"--buffer-tokens must be positive, got {buffer_tokens}")
        self.reader, self.texts, self.buffer_tokens = reader, texts, int(buffer_tokens)
        self.chunk = max(1, int(getattr(reader, "chunk_docs", 256)))
        self.d_model = int(reader.d_model)
        self.progress = progress
        self._identity: dict | None = None

    @property
    def identity(self) -> dict:
        """The documents' content hash, count and the reader: a checkpoint made on another
        stream is refused."""
        if self._identity is None:
            self._identity = {
                "corpus": corpus_fingerprint(self.texts),
                "documents": len(self.texts),
                "reader": self.reader.describe(),
            }
        return self._identity

    def read(self, position: dict, min_rows: int) -> tuple[torch.Tensor, dict]:
        """At least ``min_rows`` activation rows read from ``position`` on (the reader's dtype, on
        the CPU), and the position after them; whole chunks of documents are read."""
        from tqdm.auto import tqdm

        doc, passes = int(position["doc"]), int(position["pass"])
        parts: list[torch.Tensor] = []
        rows = 0
        bar = tqdm(
            total=min_rows, desc="reading", unit="tok", leave=False, disable=not self.progress
        )
        rows_at_wrap = None  # rows read when this call last went back to the first document
        while rows < min_rows:
            if doc >= len(self.texts):
                if rows_at_wrap == rows:
                    raise SaetoolsError("the documents yield no tokens to train on")
                doc, passes, rows_at_wrap = 0, passes + 1, rows
            hi = min(doc + self.chunk, len(self.texts))
            for item in self.reader.iter_activations(self.texts[doc:hi]):
                if item.acts.shape[0]:
                    parts.append(item.acts.to("cpu"))
                    rows += item.acts.shape[0]
                    bar.update(item.acts.shape[0])
            doc = hi
        bar.close()
        after = {"buffer": int(position["buffer"]) + 1, "doc": doc, "pass": passes}
        return torch.cat(parts), after


class StreamTrainer(Trainer):
    """A :class:`~saetools.sae.train.Trainer` fed by an :class:`ActivationStream`.

    Trains ``cfg.tokens`` tokens (``tokens // batch_size`` steps); checkpoints after every
    buffer; ``train(resume=True)`` continues a stopped run where its last buffer ended.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        stream: ActivationStream,
        out,
        reader_info: dict | None = None,
        progress: bool = True,
    ) -> None:
        if not cfg.tokens or cfg.tokens < cfg.batch_size:
            raise SaetoolsError(
                f"--tokens must be at least one batch ({cfg.batch_size}), got {cfg.tokens}"
            )
        self.stream = stream
        self.position: dict = {"buffer": 0, "doc": 0, "pass": 0}
        self._first: torch.Tensor | None = None
        super().__init__(cfg, stream, out, reader_info=reader_info, progress=progress)

    # -- what the base trainer asks of its data -------------------------------------------
    def planned_steps(self) -> int:
        """``tokens // batch_size`` optimisation steps."""
        return self.cfg.tokens // self.cfg.batch_size

    def data_tokens(self) -> int:
        """Tokens the run will see (caps the dead-latent window)."""
        return self.cfg.tokens

    def data_identity(self):
        """The stream's identity, stored in checkpoints."""
        return self.stream.identity

    def checkpoint_position(self) -> dict | None:
        """Where the next buffer starts."""
        return dict(self.position)

    def restore_position(self, position: dict | None) -> None:
        """Continue from a checkpoint's position."""
        if position is None:
            raise SaetoolsError(f"{self.checkpoint_dir}: checkpoint has no stream position")
        self.position = dict(position)

    def periodic_checkpoint(self) -> bool:
        """Checkpoints are written at buffer ends (by :meth:`batches`) instead."""
        return False

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` rows of the first buffer (read once and kept for training)."""
        if self._first is None:
            self._first, after = self.stream.read(self.position, self.stream.buffer_tokens)
            self._first_after = after
        g = torch.Generator().manual_seed(seed)
        rows = self._first
        return rows[torch.randperm(rows.shape[0], generator=g)[:n]].float()

    def batches(self) -> Iterator[torch.Tensor]:
        """Shuffled batches buffer after buffer; a checkpoint after each buffer's last step."""
        bs = self.cfg.batch_size
        while self.step < self.total_steps:
            if self._first is not None and self.position["buffer"] == 0:
                rows, after = self._first, self._first_after
                self._first = None
            else:
                rows, after = self.stream.read(self.position, self.stream.buffer_tokens)
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.position["buffer"])
            rows = rows[torch.randperm(rows.shape[0], generator=g)]
            for lo in range(0, rows.shape[0] // bs * bs, bs):
                if self.step >= self.total_steps:
                    break
                yield rows[lo : lo + bs]
            self.position = after
            if self.step < self.total_steps:
                self.save_checkpoint()

    def eval_batches(self) -> Iterator[torch.Tensor]:
        """Rows read after the last training buffer (documents the SAE has not yet seen, unless
        the run went round the documents more than once)."""
        rows, _ = self.stream.read(self.position, min(EVAL_TOKENS, self.stream.buffer_tokens))
        for lo in range(0, rows.shape[0], 4096):
            yield rows[lo : lo + 4096]

    def corpus_record(self) -> dict:
        """What the saved SAE records about its data."""
        docs = len(self.stream.texts)
        return {
            "corpus_tokens": None,
            "streamed": {
                "documents": docs,
                "passes": round(self.position["pass"] + self.position["doc"] / max(docs, 1), 4),
                "buffer_tokens": self.stream.buffer_tokens,
                "corpus": self.stream.identity["corpus"],
            },
        }
