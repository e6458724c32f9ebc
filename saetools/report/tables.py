"""Terminal tables and CSV/JSONL output for analysis DataFrames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..outputs import check_output_file
from ..text import spreadsheet_safe

TABLE_SUFFIXES = (".csv", ".jsonl")


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or JSONL (by suffix), atomically; list cells become JSON. In CSV,
    text cells that a spreadsheet would run as a formula get a leading ``'``."""
    path = Path(path)
    check_output_file(path, "--out", TABLE_SUFFIXES)
    suffix = path.suffix.lower()
    out = frame.copy()
    tmp = path.with_name(path.name + ".tmp")
    if suffix == ".csv":
        for column in out.columns:
            if out[column].map(lambda v: isinstance(v, list | dict)).any():
                out[column] = out[column].map(json.dumps)
            if out[column].map(lambda v: isinstance(v, str)).any():
                out[column] = out[column].map(spreadsheet_safe)
        out.to_csv(tmp, index=False)
    else:
        out.to_json(tmp, orient="records", lines=True, force_ascii=False)
    os.replace(tmp, path)
    return path
