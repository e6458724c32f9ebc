"""``saetools labels``: bring existing explanations of an SAE's latents."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli


@cli.group()
def labels() -> None:
    """Manage the labels of an SAE's latents."""


@labels.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--sae",
    required=True,
    help="the SAE the labels describe: a folder, a .pth file, a hub reference or a SAELens "
    "release/sae_id",
)
def import_(file, sae) -> None:
    """Import latent explanations from FILE: a Neuronpedia export (.json), a latent -> label
    map or list (.json), or CSV/TSV/JSONL with latent,label[,score].

    The labels are filed under the SAE's weights and are then used by diff, correlate,
    cluster, search and the reports, ahead of machine-made labels.
    """
    from ..labels.imports import import_labels

    written, count = import_labels(file, sae)
    click.echo(f"imported {count:,} labels from {file} for {sae}; stored in {written}")
