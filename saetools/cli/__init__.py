"""The ``saetools`` command line: a thin layer over :mod:`saetools.api`.

Options come from the dataclasses of :mod:`saetools.options` (one declaration each); commands
turn them back into those objects and call the API. Nothing heavy is imported until a command
runs, so ``saetools --help`` starts fast.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import SaetoolsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saetools")
def cli() -> None:
    """saetools: interpretable embeddings of text datasets with sparse autoencoders."""


from . import analyses, browse, build, labels  # noqa: E402,F401  (registers the commands)


def main() -> None:
    """Entry point: run the CLI, printing user errors as one line without a traceback."""
    from .options import quiet_libraries

    quiet_libraries()
    try:
        cli.main(standalone_mode=False)
    except SaetoolsError as exc:
        from ..text import terminal_safe

        click.echo(f"error: {terminal_safe(exc)}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["cli", "main"]
