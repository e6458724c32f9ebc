"""Checks of the paths a command will write, made before any model is loaded, and the file mode
that store files get."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SaetoolsError


def _writable_folder(folder: Path, path: Path, what: str) -> None:
    if not folder.is_dir():
        raise SaetoolsError(f"{path}: {what}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SaetoolsError(f"{path}: {what}: cannot write in folder {folder}")


def check_output_file(path, what: str, suffixes: tuple[str, ...] | None = None) -> None:
    """Raise a one-line error unless ``path`` can be written as a file (its folder exists and
    is writable, it is not a folder, and it ends in one of ``suffixes``)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise SaetoolsError(f"{path}: {what} is a folder; give a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise SaetoolsError(f"{path}: {what} must end in {' or '.join(suffixes)}")
    _writable_folder(path.parent if str(path.parent) else Path("."), path, what)


def check_output_folder(path, what: str) -> None:
    """Raise a one-line error unless ``path`` is, or can be created as, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SaetoolsError(f"{path}: {what} is an existing file; give a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SaetoolsError(f"{path}: {what}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SaetoolsError(f"{path}: {what}: cannot write in folder {existing}")


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def default_file_mode() -> int:
    """The mode a new file gets here: 0o666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
