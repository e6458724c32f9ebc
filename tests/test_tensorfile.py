"""Safetensors files written by saetools are byte-for-byte reproducible and load anywhere."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from safetensors import safe_open

from saetools.tensorfile import save_tensors

WRITE = """
import sys
import numpy as np
from saetools.tensorfile import save_tensors
metadata = {f"key{i}": f"value {i} é" for i in range(12)}
tensors = {"b": np.arange(6, dtype=np.float16).reshape(2, 3), "a": np.ones(5, np.int32)}
save_tensors(sys.argv[1], tensors, metadata)
"""


def test_the_same_tensors_and_metadata_give_the_same_bytes_in_every_process(tmp_path):
    # the safetensors writer orders metadata by a per-process hash map: twelve keys written by
    # four processes came out in different orders before the header was sorted
    paths = [tmp_path / f"{k}.safetensors" for k in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", WRITE, str(path)], check=True)
    contents = {path.read_bytes() for path in paths}
    assert len(contents) == 1
    with safe_open(str(paths[0]), "np") as fh:
        assert fh.metadata() == {f"key{i}": f"value {i} é" for i in range(12)}
        np.testing.assert_array_equal(fh.get_tensor("b"), np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(fh.get_tensor("a"), np.ones(5))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "x.safetensors"
    save_tensors(path, {"v": np.zeros(3, np.float32)})
    save_tensors(path, {"v": np.ones(4, np.float32)}, {"note": "second"})
    with safe_open(str(path), "np") as fh:
        assert fh.metadata() == {"note": "second"}
        np.testing.assert_array_equal(fh.get_tensor("v"), np.ones(4))
