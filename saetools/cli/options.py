"""Command-line options made from the option dataclasses of :mod:`saetools.options`, and the
few things every command shares (LLM job confirmation, writing outputs)."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

import click

from ..options import field_docs


def _base_type(hint) -> Any:
    """``int`` for ``int | None``; ``str`` for ``Any``."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in hint.__args__ if a is not type(None))
    return str if hint is Any else hint


def options_from(cls: type, *, exclude: tuple[str, ...] = ()):
    """Decorator adding one click option per field of the dataclass ``cls`` (help: the field's
    docstring; flags, choices and repetition from its ``cli`` metadata)."""

    def decorate(func):
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        for f in reversed(dataclasses.fields(cls)):
            meta = f.metadata.get("cli", {})
            if f.name in exclude or meta.get("cli") is False:
                continue
            flag = meta.get("flag", "--" + f.name.replace("_", "-"))
            names = [flag] + ([meta["short"]] if "short" in meta else [])
            help_text = docs.get(f.name, "")
            base = _base_type(hints[f.name])
            if meta.get("flag_only"):
                option = click.option(*names, f.name, is_flag=True, help=help_text)
            elif base is bool:
                option = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    f.name,
                    default=f.default,
                    show_default=True,
                    help=help_text,
                )
            elif meta.get("multiple"):
                option = click.option(*names, f.name, multiple=True, help=help_text)
            else:
                choices = meta.get("choices")
                option = click.option(
                    *names,
                    f.name,
                    type=click.Choice(choices) if choices else base,
                    default=f.default,
                    show_default=f.default is not None,
                    help=help_text,
                )
            func = option(func)
        return func

    return decorate


def take(kwargs: dict[str, Any], cls: type, **extra):
    """Remove the fields of ``cls`` from the command's keyword arguments and build it (repeated
    options become lists, or None when not given); ``extra`` sets fields directly."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            value = kwargs.pop(f.name)
            values[f.name] = (list(value) or None) if isinstance(value, tuple) else value
    return cls(**values, **extra)


def take_all(kwargs: dict[str, Any], *classes: type) -> tuple:
    """:func:`take` for each class in turn."""
    return tuple(take(kwargs, cls) for cls in classes)


QUIET = click.option("--quiet", "-q", is_flag=True, help="no progress bars, no table")


def path_option(flag: str, dest: str, help_text: str):
    """An optional path option (``--out``, ``--html``)."""
    return click.option(flag, dest, type=click.Path(path_type=Path), default=None, help=help_text)


OUT = path_option("--out", "out", "write the rows to a .csv or .jsonl file")
HTML = path_option("--html", "html_path", "write a self-contained HTML report")
CONFIRM_ABOVE_TOKENS = 100_000


def confirm_llm_job(estimate, llm_options) -> bool:
    """Print an LLM job's estimated size and cost; ask when it is large. False: do not run."""
    click.echo(estimate.describe(), err=True)
    if llm_options.dry_run:
        return False
    if estimate.tokens > CONFIRM_ABOVE_TOKENS and not llm_options.yes:
        return click.confirm("run it?", default=False, err=True)
    return True


def check_outputs(out, html_path) -> None:
    """Refuse ``--out``/``--html`` paths that cannot be written, before any work is done."""
    from ..outputs import check_output_file
    from ..report.tables import TABLE_SUFFIXES

    check_output_file(out, "--out", TABLE_SUFFIXES)
    check_output_file(html_path, "--html")


def write_outputs(
    frame, out, html_path, quiet: bool, html_writer, text: str | None = None, client=None
) -> None:
    """Print the result's ``text`` (unless quiet) and the LLM token line (if an LLM was used),
    then write ``--out`` and ``--html`` files and say so."""
    from ..report.tables import write_table
    from ..text import terminal_safe

    if text is not None and not quiet:
        click.echo(terminal_safe(text))
    if client is not None:
        click.echo(client.usage.summary(), err=True)
    if out:
        write_table(frame, out)
        click.echo(f"wrote {len(frame)} rows to {out}", err=quiet)
    if html_path:
        html_writer(frame, html_path)
        click.echo(f"wrote {html_path}", err=quiet)


def quiet_libraries() -> None:
    """Silence third-party progress bars and chatter (saetools shows its own progress), through
    the environment, so that nothing heavy is imported before a command needs it."""
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
