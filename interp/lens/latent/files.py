"""Reading index files defensively: every file is checked against what the manifest says before it is used.

A safetensors file is validated from its header alone (no tensor is read): it must parse, its tensors must have
the expected names, dtypes and shapes, and the byte ranges must fit the file (a truncated file is caught). A pickle
or any other file fails the parse. Then ``verify`` checks its bytes against the SHA-256 that ``index.json`` recorded
when it was written (``checksums`` makes that record). Each failure is one ``InterpError`` that names the file and
what is wrong.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from interp.errors import InterpError
from interp.io import check_sha256, sha256_file

__all__ = ["DTYPES", "dtype_from_name", "dtype_name", "read_header", "check_file", "load_checked", "memmap", "read_json",
           "checksums", "verify"]

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
"the vector dtypes an index may store (anything else in a manifest is refused, never looked up on torch)"
_ST = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.int32: "I32", torch.int64: "I64"}
_NP = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64}
_SIZE = {"F16": 2, "BF16": 2, "F32": 4, "I32": 4, "I64": 8}
_MAX_HEADER = 100 * 2**20


def dtype_from_name(name, where: Path | str) -> torch.dtype:
    """The torch dtype of an allowed name ("float16", "bfloat16", "float32"); ``InterpError`` naming ``where`` otherwise."""
    if not isinstance(name, str) or name not in DTYPES:
        raise InterpError(f"{where}: dtype {name!r} is not one of {', '.join(DTYPES)}; the index folder is damaged, rebuild it")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    """"float16" for torch.float16 (the names of ``DTYPES``)."""
    return str(dtype).replace("torch.", "")


def read_json(path: Path, kind: type = dict):
    """Parsed JSON of ``path`` (must be a ``kind``); ``InterpError`` naming the file when missing or not valid JSON."""
    if not path.is_file():
        raise InterpError(f"{path} is missing: the index folder is incomplete, rebuild it")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InterpError(f"{path} is not valid JSON: the index folder is damaged, rebuild it") from None
    if not isinstance(value, kind):
        raise InterpError(f"{path} holds a {type(value).__name__}, expected a {kind.__name__}: the index folder is damaged")
    return value


def read_header(path: Path) -> tuple[dict, int]:
    """(tensor entries {name: {dtype, shape, data_offsets}} plus "__metadata__", data start byte) of a safetensors file.

    Raises ``InterpError`` naming ``path`` when it is missing, not a safetensors file, or shorter than its header says.
    """
    if not path.is_file():
        raise InterpError(f"{path} is missing: the index folder is incomplete, rebuild it")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= n <= min(_MAX_HEADER, size - 8):
            raise InterpError(f"{path} is not a safetensors file (a pickle or a damaged file?): rebuild the index")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InterpError(f"{path} is not a safetensors file (its header is not JSON): rebuild the index") from None
    if not isinstance(header, dict):
        raise InterpError(f"{path} is not a safetensors file: rebuild the index")
    start = 8 + n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            a, b = entry["data_offsets"]
            count = math.prod(entry["shape"])
            ok = 0 <= a <= b and b - a == count * _SIZE[entry["dtype"]]
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise InterpError(f"{path}: tensor {name!r} has an invalid header entry: the file is damaged, rebuild the index")
        if start + b > size:
            raise InterpError(f"{path} is truncated ({size} bytes, tensor {name!r} needs {start + b}): rebuild the index")
    return header, start


def check_file(path: Path, expect: dict[str, tuple[torch.dtype, tuple[int, ...] | None]]) -> tuple[dict, int]:
    """Check that safetensors file ``path`` holds each ``name`` of ``expect`` with that dtype and shape (``None``: any
    1-D length); returns ``read_header``'s (header, data start). ``InterpError`` naming the file and the tensor otherwise."""
    header, start = read_header(path)
    for name, (dtype, shape) in expect.items():
        entry = header.get(name)
        if entry is None:
            have = sorted(k for k in header if k != "__metadata__")
            raise InterpError(f"{path} has no tensor {name!r} (it has {have}): the index folder is damaged, rebuild it")
        if entry["dtype"] != _ST[dtype]:
            raise InterpError(f"{path}: tensor {name!r} is {entry['dtype']}, the manifest says {dtype_name(dtype)}: rebuild the index")
        got = tuple(entry["shape"])
        if (shape is None and len(got) != 1) or (shape is not None and got != tuple(shape)):
            want = "[n]" if shape is None else list(shape)
            raise InterpError(f"{path}: tensor {name!r} has shape {list(got)}, the manifest says {want}: the index folder "
                              "does not match its index.json, rebuild it")
    return header, start


def load_checked(path: Path, expect: dict[str, tuple[torch.dtype, tuple[int, ...] | None]]) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` after ``check_file`` (read into memory)."""
    check_file(path, expect)
    return load_file(str(path))


def memmap(path: Path, header: dict, start: int, name: str) -> torch.Tensor:
    """Tensor ``name`` of a checked safetensors file as a read-only memory map (bfloat16, which numpy lacks, through
    safetensors' ``load_file``, whose tensors are memory-mapped too)."""
    entry = header[name]
    a, _ = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if entry["dtype"] == "BF16" or math.prod(shape) == 0:
        return load_file(str(path))[name]
    arr = np.memmap(path, dtype=_NP[entry["dtype"]], mode="r", offset=start + a, shape=shape)
    import warnings

    with warnings.catch_warnings():  # torch warns that the array is read-only; nothing writes to it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def checksums(folder: Path, names: list[str]) -> dict[str, str]:
    """{name: hex SHA-256} of the files ``names`` (paths relative to ``folder``), for ``index.json``'s ``sha256`` field."""
    return {name: sha256_file(Path(folder) / name) for name in names}


def verify(folder: Path, meta: dict, name: str) -> None:
    """``InterpError`` naming file ``folder/name`` unless it matches the SHA-256 that ``meta["sha256"][name]`` recorded
    (a missing record is refused too: an index written before checksums is rebuilt, never read unchecked)."""
    sums = meta.get("sha256")
    check_sha256(Path(folder) / name, sums.get(name) if isinstance(sums, dict) else None,
                 "rebuild the index (a sharded build resumes and rewrites only the damaged shards)")
