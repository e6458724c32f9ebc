"""``saetools labels``: bring existing explanations of an SAE's latents."""

from __future__ import annotations

from pathlib import Path

import click

from ..options import Source
from . import cli
from .options import QUIET, options_from, take_all


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


@labels.command("contexts")
@click.argument("target")
@click.option(
    "--data", type=click.Path(path_type=Path), default=None, help="documents, if TARGET is an SAE"
)
@options_from(Source, exclude=("sae",))
@QUIET
def contexts(target, data, quiet, **kwargs) -> None:
    """Compute each latent's context vector: the mean sentence embedding of the text around its
    strongest firings in TARGET (a store, a data file encoded with the default SAE, or an SAE
    with --data).

    Search and targeted cluster then match a query against a latent's label mixed with what
    surrounds its firings, so a latent labelled by its peak token ("!") can still be found by
    what it is used for ("enthusiasm"). The vectors are filed under the SAE's weights on this
    machine and win over any the SAE ships.
    """
    from safetensors.numpy import load_file

    from ..api import label_contexts

    (source,) = take_all(kwargs, Source)
    path = label_contexts(target, data=data, source=source, progress=not quiet)
    vectors = load_file(str(path))["vectors"]
    count = int((vectors != 0).any(axis=1).sum())
    click.echo(f"{count:,} of {len(vectors):,} latents fire here; context vectors: {path}")
