"""Terminal tables and CSV/JSONL output for analysis DataFrames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..outputs import check_output_file

TABLE_SUFFIXES = (".csv", ".jsonl")


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV or JSONL (by suffix), atomically; list cells become JSON."""
    path = Path(path)
    check_output_file(path, "--out", TABLE_SUFFIXES)
    suffix = path.suffix.lower()
    out = frame.copy()
    tmp = path.with_name(path.name + ".tmp")
    if suffix == ".csv":
        for column in out.columns:
            if out[column].map(lambda v: isinstance(v, list | dict)).any():
                out[column] = out[column].map(json.dumps)
        out.to_csv(tmp, index=False)
    else:
        out.to_json(tmp, orient="records", lines=True, force_ascii=False)
    os.replace(tmp, path)
    return path
