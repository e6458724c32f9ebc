"""Train an SAE on reader activations.

Recipe (TopK, as in Gao et al. 2024 and sparsify): inputs scaled so their mean norm is sqrt(d_in);
b_dec initialised at the geometric median of a sample; unit-norm decoder rows with the gradient's
parallel component removed; AuxK loss (k_aux = d_in/2, coefficient 1/32) on latents that have not
fired for ``dead_tokens`` tokens; Adam with lr = 2e-4 / sqrt(d_sae / 2^14), linear warm-up, and a
linear decay over the last 20% of steps. The input scaling is folded into the weights when saving,
so the saved SAE takes raw activations.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file, save_file

from ..errors import SaetoolsError
from .activations import ActivationCache
from .config import TrainConfig
from .io import save_sae
from .models import SAE, SAEConfig, build_sae


class TrainResult(NamedTuple):
    """Outcome of a training run."""

    sae: SAE
    folder: Path
    fvu: float
    l0: float
    dead_fraction: float
    steps: int
    tokens: int  # tokens seen in training (steps x batch size)


def geometric_median(points: torch.Tensor, iters: int = 100, tol: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's algorithm: the point minimising the sum of distances to ``points``."""
    median = points.mean(0)
    for _ in range(iters):
        weights = 1.0 / (points - median).norm(dim=-1).clamp_min(1e-8)
        new = (weights[:, None] * points).sum(0) / weights.sum()
        if (new - median).norm() < tol * max(float(median.norm()), 1.0):
            return new
        median = new
    return median


def learning_rate(cfg: TrainConfig) -> float:
    """The configured rate, or the TopK scaling law 2e-4 / sqrt(latents / 2^14)."""
    return cfg.lr if cfg.lr is not None else 2e-4 / math.sqrt(cfg.latents / 2**14)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, constant, then linear decay to 0 over the last 20% of steps."""
    warmup = min(warmup, max(total // 10, 1))
    if step < warmup:
        return (step + 1) / warmup
    decay_start = int(total * 0.8)
    if step >= decay_start:
        return max(total - step, 1) / max(total - decay_start, 1)
    return 1.0


def folded_copy(sae: SAE, scale: float) -> SAE:
    """An SAE taking raw inputs, equivalent to ``sae`` applied to ``x * scale`` then ``/ scale``.

    pre = (x - b_dec/s) @ (s W_enc) + b_enc equals the scaled pre-activation, so thresholds are
    unchanged; the decoder and b_dec are divided by s. A tied SAE is saved untied.
    """
    cfg = SAEConfig(**{**sae.cfg.to_dict(), "tied": False})
    out = build_sae(cfg)
    with torch.no_grad():
        out.W_enc.copy_(sae.W_enc * scale)
        out.b_enc.copy_(sae.b_enc)
        out._W_dec.copy_(sae.W_dec / scale)
        out.b_dec.copy_(sae.b_dec / scale)
        if hasattr(sae, "threshold"):
            out.threshold.copy_(sae.threshold)
            if hasattr(out, "log_threshold"):
                out.log_threshold.copy_(sae.threshold.clamp_min(1e-12).log())
    return out.eval()


@torch.no_grad()
def evaluate_sae(sae: SAE, batches, d_sae: int) -> dict[str, float]:
    """FVU over all rows, mean L0, and the fraction of latents that never fired."""
    err = total_sq = 0.0
    sums = None
    count = 0
    l0 = 0.0
    fired = torch.zeros(d_sae, dtype=torch.bool)
    for x in batches:
        x = x.float()
        codes = sae.encode(x)
        recon = sae.decode(codes)
        err += float((recon - x).pow(2).sum())
        total_sq += float(x.pow(2).sum())
        sums = x.sum(0) if sums is None else sums + x.sum(0)
        count += x.shape[0]
        active = codes.values > 0
        l0 += float(active.sum())
        fired[codes.indices[active].cpu()] = True
    if count == 0:
        raise SaetoolsError("nothing to evaluate: no activations")
    variance = total_sq - float(sums.pow(2).sum()) / count
    return {
        "fvu": err / max(variance, 1e-12),
        "l0": l0 / count,
        "dead_fraction": 1.0 - float(fired.float().mean()),
        "tokens": count,
    }


class Trainer:
    """Trains one SAE over an :class:`ActivationCache`, with checkpoints and resume.

    What it asks of its data is in a few methods (:meth:`planned_steps`, :meth:`data_tokens`,
    :meth:`data_identity`, :meth:`sample`, :meth:`batches`, :meth:`eval_batches`), which
    :class:`saetools.sae.stream.StreamTrainer` overrides to read activations as it trains.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        cache: ActivationCache,
        out: str | Path,
        reader_info: dict | None = None,
        progress: bool = True,
    ) -> None:
        from ..readers.base import resolve_device

        self.cfg, self.cache, self.out = cfg, cache, Path(out)
        self.reader_info = reader_info
        self.progress = progress
        self.device = resolve_device(cfg.device)
        if cfg.latents < 1 or cfg.batch_size < 1:
            raise SaetoolsError("--latents and --batch-size must be positive")
        if cfg.architecture in ("topk", "batchtopk") and not 1 <= cfg.k <= cfg.latents:
            raise SaetoolsError(f"--k must be in [1, {cfg.latents}], got {cfg.k}")
        self.d_model = cache.d_model
        self.total_steps = self.planned_steps()
        self.dead_tokens = min(cfg.dead_tokens, self.data_tokens())
        torch.manual_seed(cfg.seed)
        sae_cfg = SAEConfig(
            architecture=cfg.architecture,
            d_in=self.d_model,
            d_sae=cfg.latents,
            k=cfg.k if cfg.architecture in ("topk", "batchtopk") else None,
            tied=cfg.tied,
            reader=reader_info,
        )
        self.sae = build_sae(sae_cfg)
        if cfg.sparsity_coeff is not None:
            self.sae.sparsity_coeff = cfg.sparsity_coeff
        self.sae.reset_parameters(torch.Generator().manual_seed(cfg.seed))
        self.sae.to(self.device)
        self.optimizer = torch.optim.Adam(self._param_groups(), lr=learning_rate(cfg), eps=6.25e-10)
        self.step = 0
        self.scale = 1.0
        self.silent = torch.zeros(cfg.latents, dtype=torch.long, device=self.device)

    def _param_groups(self) -> list[dict]:
        """Parameters with their learning-rate multipliers (thresholds may learn faster)."""
        scale = getattr(self.sae, "threshold_lr_scale", 1.0)
        fast = [p for n, p in self.sae.named_parameters() if n == "log_threshold"]
        rest = [p for n, p in self.sae.named_parameters() if n != "log_threshold"]
        groups = [{"params": rest, "lr_scale": 1.0}]
        if fast:
            groups.append({"params": fast, "lr_scale": scale})
        return groups

    # -- the data -------------------------------------------------------------------------
    def planned_steps(self) -> int:
        """``epochs`` passes over the cached activations, in steps."""
        self.steps_per_epoch = self.cache.steps_per_epoch(self.cfg.batch_size)
        if self.steps_per_epoch == 0:
            raise SaetoolsError(
                f"only {self.cache.n_tokens} tokens of activations: fewer than one batch of "
                f"{self.cfg.batch_size}; lower --batch-size or add documents"
            )
        return max(1, int(round(self.cfg.epochs * self.steps_per_epoch)))

    def data_tokens(self) -> int:
        """Tokens of training data (caps the dead-latent window)."""
        return self.cache.n_tokens

    def data_identity(self):
        """What a checkpoint must have been made on to be resumed here."""
        return self.cache.n_tokens

    def checkpoint_position(self) -> dict | None:
        """Extra position state saved in checkpoints (none: the step says where)."""
        return None

    def restore_position(self, position: dict | None) -> None:
        """Restore :meth:`checkpoint_position` from a checkpoint."""

    def periodic_checkpoint(self) -> bool:
        """Whether to checkpoint now, after a step."""
        return self.step % self.cfg.checkpoint_every == 0 and self.step < self.total_steps

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` random activation rows (float32), for initialisation and calibration."""
        return self.cache.sample(n, seed=seed)

    def eval_batches(self):
        """Batches the final FVU, L0 and dead fraction are measured on (up to 262,144 rows)."""
        seen = 0
        for i in range(len(self.cache.shards)):
            if seen >= 262_144:
                return
            shard = self.cache.load_shard(i)
            for lo in range(0, shard.shape[0], 4096):
                yield shard[lo : lo + 4096]
            seen += shard.shape[0]

    def corpus_record(self) -> dict:
        """What the saved SAE records about its data."""
        return {"corpus_tokens": self.cache.n_tokens}

    # -- initialisation -------------------------------------------------------------------
    @torch.no_grad()
    def initialise(self) -> None:
        """Input scale (mean norm -> sqrt(d_in)) and b_dec at the geometric median of a sample;
        with ``init``, the starting SAE's weights and scale instead."""
        if self.cfg.init:
            start, scale = self.starting_sae()
            self.scale = scale
            self.sae.load_state_dict(folded_copy(start, 1.0 / scale).state_dict())
            return
        sample = self.sample(8192, seed=self.cfg.seed)
        self.scale = math.sqrt(self.d_model) / float(sample.norm(dim=-1).mean())
        self.sae.b_dec.copy_(geometric_median(sample * self.scale).to(self.device))

    def starting_sae(self) -> tuple[SAE, float]:
        """The SAE named by ``init`` (as saved: taking raw inputs) and the input scale it was
        trained with; a clear error when it cannot be continued with these settings."""
        from .hub import resolve_sae_path
        from .io import load_sae

        start = load_sae(resolve_sae_path(self.cfg.init))
        theirs = start.cfg
        wanted = {
            "architecture": self.cfg.architecture,
            "d_in": self.d_model,
            "d_sae": self.cfg.latents,
            "k": self.cfg.k if self.cfg.architecture in ("topk", "batchtopk") else None,
        }
        found = {
            "architecture": theirs.architecture,
            "d_in": theirs.d_in,
            "d_sae": theirs.d_sae,
            "k": theirs.k if theirs.architecture in ("topk", "batchtopk") else None,
        }
        changed = [
            f"{key} {found[key]} (here {wanted[key]})"
            for key in wanted
            if found[key] != wanted[key]
        ]
        if self.cfg.tied:
            changed.append("tied decoder (continued training is untied)")
        reader = theirs.reader or {}
        for key in ("name", "layer"):
            here = (self.reader_info or {}).get(key)
            if reader.get(key) is not None and here is not None and reader[key] != here:
                changed.append(f"reader {key} {reader[key]} (here {here})")
        if changed:
            raise SaetoolsError(f"--init {self.cfg.init}: cannot continue it: {'; '.join(changed)}")
        scale = theirs.extra.get("training", {}).get("input_scale")
        if not scale:
            sample = self.sample(8192, seed=self.cfg.seed)
            scale = math.sqrt(self.d_model) / float(sample.norm(dim=-1).mean())
        return start, float(scale)

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        """Where resumable state is kept."""
        return self.out / "checkpoint"

    def save_checkpoint(self) -> None:
        """Write model, optimiser and counters atomically to ``checkpoint/``."""
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.sae.state_dict().items()
        }
        for i, group in enumerate(self.optimizer.state_dict()["state"].values()):
            for name, value in group.items():
                if torch.is_tensor(value):
                    tensors[f"adam.{i}.{name}"] = (
                        value.detach().cpu().reshape(-1).contiguous()
                        if value.dim() == 0
                        else value.detach().cpu().contiguous()
                    )
        tensors["silent"] = self.silent.cpu()
        state = {
            "step": self.step,
            "scale": self.scale,
            "config": self.cfg.to_dict(),
            "reader": self.reader_info,
            "n_tokens": self.data_identity(),
            "position": self.checkpoint_position(),
        }
        tmp = self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        old = self.out / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint_dir.exists():
            os.replace(self.checkpoint_dir, old)
        os.replace(tmp, self.checkpoint_dir)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> bool:
        """Restore state from ``checkpoint/``; False when there is none."""
        folder = self.checkpoint_dir
        if not (folder / "state.json").exists():
            old = self.out / "checkpoint.old"
            if (old / "state.json").exists():
                folder = old
            else:
                return False
        state = json.loads((folder / "state.json").read_text())
        saved = {
            k: v for k, v in state["config"].items() if k not in ("checkpoint_every", "device")
        }
        current = {
            k: v for k, v in self.cfg.to_dict().items() if k not in ("checkpoint_every", "device")
        }
        if saved != current or state["n_tokens"] != self.data_identity():
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise SaetoolsError(
                f"{folder}: checkpoint was made with other settings "
                f"({', '.join(changed) or 'data'}); rerun with the same options or without --resume"
            )
        tensors = load_file(str(folder / "state.safetensors"))
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.sae.load_state_dict(model)
        # Rebuild Adam's state in the parameter order it uses.
        opt_state = self.optimizer.state_dict()
        params = opt_state["param_groups"][0]["params"]
        new_state = {}
        for i, pid in enumerate(params):
            prefix = f"adam.{i}."
            entry = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            if entry:
                if "step" in entry:
                    entry["step"] = entry["step"].reshape(())
                new_state[pid] = entry
        opt_state["state"] = new_state
        self.optimizer.load_state_dict(opt_state)
        self.silent = tensors["silent"].to(self.device)
        self.step = int(state["step"])
        self.scale = float(state["scale"])
        self.restore_position(state.get("position"))
        return True

    # -- training -------------------------------------------------------------------------
    def batches(self):
        """Yield ``(step, batch)`` from the current step on, across epochs."""
        epoch, skip = divmod(self.step, self.steps_per_epoch)
        while self.step < self.total_steps:
            it = self.cache.iter_batches(
                epoch, self.cfg.batch_size, self.cfg.buffer_tokens, self.cfg.seed
            )
            for i, batch in enumerate(it):
                if i < skip:
                    continue
                if self.step >= self.total_steps:
                    return
                yield batch
            epoch, skip = epoch + 1, 0

    def train(self, resume: bool = False) -> TrainResult:
        """Run (or resume) training; save the SAE in SAELens layout under ``out``."""
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        resumed = resume and self.load_checkpoint()
        if not resumed:
            self.initialise()
        base_lr = learning_rate(self.cfg)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not self.progress,
        )
        log = open(self.out / "train_log.jsonl", "a", buffering=1)  # line-buffered: readable live
        ema = None
        for batch in self.batches():
            x = batch.to(self.device, torch.float32) * self.scale
            for group in self.optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(
                    self.step, self.total_steps, self.cfg.warmup_steps
                )
            dead = self.silent >= self.dead_tokens
            out = self.sae.training_forward(x, dead)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if self.sae.uses_unit_decoder:
                self.sae.project_decoder_grad()
            self.optimizer.step()
            if self.sae.uses_unit_decoder:
                self.sae.normalize_decoder()
            with torch.no_grad():
                fired = torch.zeros_like(self.silent, dtype=torch.bool)
                fired[out.codes.indices[out.codes.values > 0]] = True
                self.silent += x.shape[0]
                self.silent[fired] = 0
            self.step += 1
            stats = {
                "fvu": float(out.fvu.detach()),
                "l0": out.l0,
                "dead": float(dead.float().mean()),
            }
            ema = stats if ema is None else {k: 0.9 * ema[k] + 0.1 * v for k, v in stats.items()}
            bar.update(1)
            if self.step % 10 == 0 or self.step == self.total_steps:
                bar.set_postfix(
                    fvu=f"{ema['fvu']:.3f}", l0=f"{ema['l0']:.1f}", dead=f"{ema['dead']:.1%}"
                )
                log.write(
                    json.dumps({"step": self.step, **stats, "aux": float(out.aux_loss.detach())})
                    + "\n"
                )
            if self.periodic_checkpoint():
                self.save_checkpoint()
        bar.close()
        log.close()
        return self.finish()

    def continued_from(self) -> dict:
        """What the starting SAE of a continued run was: its fingerprint and its own training
        record (tokens seen, corpus, steps)."""
        from .io import sae_fingerprint

        start, _ = self.starting_sae()
        record = start.cfg.extra.get("training", {})
        keep = ("tokens_seen", "steps", "streamed", "corpus_tokens", "continued_from")
        return {"sae": sae_fingerprint(start), **{k: record[k] for k in keep if k in record}}

    def finish(self) -> TrainResult:
        """Fold the scaling in, evaluate on the cached activations, save, drop the checkpoint."""
        self.sae.eval()
        if hasattr(self.sae, "calibrate_threshold"):
            sample = self.sample(16384, seed=self.cfg.seed + 1).to(self.device)
            self.sae.calibrate_threshold(sample * self.scale)
        final = folded_copy(self.sae.cpu(), self.scale)
        metrics = evaluate_sae(final, self.eval_batches(), final.cfg.d_sae)
        final.cfg.extra["training"] = {
            **{k: self.cfg.to_dict()[k] for k in ("epochs", "batch_size", "seed", "architecture")},
            "lr": learning_rate(self.cfg),
            "steps": self.step,
            "tokens_seen": self.step * self.cfg.batch_size,
            **self.corpus_record(),
            "input_scale": self.scale,
            "eval": metrics,
            **({"continued_from": self.continued_from()} if self.cfg.init else {}),
        }
        save_dtype = {
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[self.cfg.save_dtype]
        save_sae(final, self.out, dtype=save_dtype)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return TrainResult(
            final,
            self.out,
            metrics["fvu"],
            metrics["l0"],
            metrics["dead_fraction"],
            self.step,
            self.step * self.cfg.batch_size,
        )
