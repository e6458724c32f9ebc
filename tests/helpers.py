"""Helpers shared by the tests: synthetic data and small files."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def synthetic_dictionary(n: int, d: int = 48, atoms: int = 192, active: int = 4, seed: int = 0):
    """Data made from a known sparse dictionary: returns (x [n, d], atoms [atoms, d])."""
    g = torch.Generator().manual_seed(seed)
    dictionary = torch.randn(atoms, d, generator=g)
    dictionary /= dictionary.norm(dim=-1, keepdim=True)
    ids = torch.randint(0, atoms, (n, active), generator=g)
    mags = torch.rand(n, active, generator=g) * 2 + 0.5
    x = torch.zeros(n, d)
    x.index_add_(
        0,
        torch.arange(n).repeat_interleave(active),
        mags.reshape(-1, 1) * dictionary[ids.reshape(-1)],
    )
    return x, dictionary


def fresh_home(folder: Path) -> Path:
    """An empty ``$SAETOOLS_HOME`` at ``folder`` that shares the current home's converted
    reader and CPU dtype probe, so a test with a clean cache does not convert the GGUF again
    (~25 s; tests/test_readers.py checks the conversion itself)."""
    import shutil

    from saetools.paths import saetools_home

    home = saetools_home()
    folder.mkdir(parents=True, exist_ok=True)
    (home / "readers").mkdir(exist_ok=True)
    (folder / "readers").symlink_to(home / "readers")
    if (home / "dtype-probe.json").is_file():
        shutil.copy(home / "dtype-probe.json", folder / "dtype-probe.json")
    return folder


def write_jsonl(path: Path, rows) -> Path:
    """Write dict rows as JSONL."""
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def cli_error(*args) -> str:
    """Run a saetools command in-process and return the user error it stops with (asserting
    it is a one-line :class:`SaetoolsError`; ``main`` prints exactly that, without traceback —
    one subprocess test per command checks the printed form)."""
    from click.testing import CliRunner

    from saetools.cli import cli
    from saetools.errors import SaetoolsError

    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SaetoolsError), (result.exception, result.output)
    message = str(result.exception)
    assert "\n" not in message
    return message


def random_sae(folder: Path, d_sae: int = 256, k: int = 8, seed: int = 0, labels=None) -> Path:
    """A random-weight TopK SAE for the default reader (SmolLM2 layer 15, width 576) saved in
    ``folder``, with ``labels`` (``latent -> text``) as its labels.jsonl when given."""
    import torch

    from saetools.sae.io import save_sae
    from saetools.sae.models import SAEConfig, build_sae

    torch.manual_seed(seed)
    cfg = SAEConfig("topk", 576, d_sae, k, reader={"name": "smollm2-135m", "layer": 15})
    save_sae(build_sae(cfg), folder, dtype=torch.float32)
    if labels is not None:
        write_jsonl(folder / "labels.jsonl", [{"latent": j, "label": t} for j, t in labels.items()])
    return folder


def run_encode(data, out, sae, *extra):
    """Start ``saetools encode DATA --out OUT --sae SAE --shard-docs 20 --quiet`` in a
    subprocess (stdout and stderr piped, text)."""
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saetools.cli",
            "encode",
            str(data),
            "--out",
            str(out),
            "--sae",
            str(sae),
            "--shard-docs",
            "20",
            "--quiet",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
