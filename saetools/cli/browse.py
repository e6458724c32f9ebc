"""The ``browse`` command: the local web app over a store."""

from __future__ import annotations

from pathlib import Path

import click

from ..options import FamiliesOptions, Source
from . import cli
from .options import options_from, take


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="a second store or data file: adds the diff view (DATA as A, this as B)",
)
@click.option("--port", default=8050, show_default=True, help="port on 127.0.0.1 (0: any free)")
@options_from(Source)
@options_from(FamiliesOptions)
def browse(data, compare, port, **kwargs) -> None:
    """A local web app over DATA (a store or data file): search with sliders that steer the
    query along its features (document-embedding stores), feature pages, the family graph and,
    with --compare, a diff view (the family options set what the graph shows). Serves on
    127.0.0.1 only; Ctrl+C stops it."""
    from ..browse import browse as browse_app

    def ready(url: str) -> None:
        click.echo(f"saetools browse: {url}  (Ctrl+C stops)", err=True)

    families = take(kwargs, FamiliesOptions)
    source = take(kwargs, Source)
    browse_app(data, compare=compare, port=port, source=source, families=families, ready=ready)
