"""User-facing errors: one line, naming the file, line and field where known."""

from __future__ import annotations

from pathlib import Path


class SaetoolsError(Exception):
    """An error caused by the user's input or settings; the CLI prints it as one line."""


class InputError(SaetoolsError):
    """Bad input data, located by file, line and field.

    The message reads ``FILE:LINE: field 'F': what is wrong``; any part that is unknown is left out.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.file is not None:
            where = self.file if line is None else f"{self.file}:{line}"
        parts = [p for p in (where, f"field '{field}'" if field else "") if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
