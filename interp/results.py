"""Base class of every analysis result: shape checks, save/load (safetensors + JSON), notebook HTML.

A result is a frozen dataclass. Tensor fields are stored in one ``.safetensors`` file; every other
field (strings, numbers, lists, dicts of those) goes as JSON into that file's metadata, so a result is
one file, never a pickle. Subclasses declare named shapes in ``_shapes`` and ``__post_init__`` checks
that every named dimension agrees across fields::

    @dataclass(frozen=True)
    class LensResult(Result):
        probs: torch.Tensor
        "[layer, pos, k] top-k probabilities"
        _shapes = {"probs": "layer pos k"}
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save as _st_bytes

from interp.errors import InterpError
from interp.io import atomic_write

R = TypeVar("R", bound="Result")
_FORMAT = "interp-result-v1"


def check_shapes(obj: Any, shapes: dict[str, str]) -> dict[str, int]:
    """Check tensor fields of ``obj`` against space-separated dimension names; return the sizes found.

    A dimension name used in several fields must have the same size in each; ``_`` matches anything.
    Raises ``ValueError`` naming the field, the expected and the actual shape.
    """
    sizes: dict[str, int] = {}
    for name, spec in shapes.items():
        value = getattr(obj, name)
        if value is None:
            continue
        dims = spec.split()
        if not isinstance(value, torch.Tensor) or value.ndim != len(dims):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{type(obj).__name__}.{name} must have shape [{', '.join(dims)}], got {got}")
        for d, n in zip(dims, value.shape):
            if d == "_":
                continue
            if sizes.setdefault(d, n) != n:
                raise ValueError(
                    f"{type(obj).__name__}.{name}: dimension {d!r} is {n} but another field has {sizes[d]}"
                )
    return sizes


@dataclasses.dataclass(frozen=True)
class Result:
    """Mixin for frozen result dataclasses (see the module docstring)."""

    _shapes: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor) and (v.requires_grad or v.device.type != "cpu"):
                object.__setattr__(self, f.name, v.detach().cpu())
        check_shapes(self, self._shapes)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write this result to ``path`` (a ``.safetensors`` file) atomically; returns the path."""
        tensors, meta = {}, {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                tensors[f.name] = v.contiguous()
            else:
                meta[f.name] = _to_json(v)
        header = {"format": _FORMAT, "type": type(self).__name__, "fields": json.dumps(meta)}
        return write_safetensors(path, tensors, header)

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        """Read a result written by ``save``; returns the result.

        Raises ``InterpError`` naming the file when it is missing, not a (whole) safetensors file, of another
        result type, or when its tensors and fields do not make a valid ``cls`` (a tensor renamed or missing,
        a shape that disagrees, metadata of the wrong type).
        """
        path = Path(path)
        if not path.is_file():
            raise InterpError(f"no result file at {path}")
        header, tensors = read_safetensors(path, what="result")
        if header.get("format") != _FORMAT or header.get("type") != cls.__name__:
            raise InterpError(f"{path} holds a {header.get('type', 'non-interp')} result, not a {cls.__name__}")
        try:
            fields = json.loads(header["fields"])
        except (KeyError, TypeError, ValueError):
            raise InterpError(f"{path}: the result's metadata has no readable 'fields' entry (damaged file: write it again)") from None
        if not isinstance(fields, dict):
            raise InterpError(f"{path}: the result's 'fields' metadata is not a JSON object (the file is damaged: write it again)")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(tensors) - set(names)) + sorted(set(fields) - set(names))
        both = sorted(set(tensors) & set(fields))
        missing = [n for n in names if n not in tensors and n not in fields]
        if unknown or missing or both:
            what = "; ".join(x for x in (unknown and f"unknown entries {unknown}", missing and f"missing fields {missing}",
                                          both and f"fields stored twice {both}") if x)
            raise InterpError(f"{path} is not a valid {cls.__name__} file ({what}): write it again with save()")
        values = {**fields, **tensors}
        try:
            return cls(**{n: values[n] for n in names})
        except (TypeError, ValueError, AttributeError, IndexError) as e:
            raise InterpError(f"{path} is not a valid {cls.__name__} file: {e}") from None

    # ---- display -----------------------------------------------------------------------------
    def summary(self) -> dict[str, str]:
        """Short human-readable description of each field (shapes for tensors)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = f"tensor {list(v.shape)} {str(v.dtype).replace('torch.', '')}"
            elif isinstance(v, (list, tuple)) and len(v) > 8:
                out[f.name] = f"{type(v).__name__} of {len(v)}: {', '.join(map(str, v[:8]))}, ..."
            else:
                out[f.name] = str(v)[:200]
        return out

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>" for k, v in self.summary().items()
        )
        return f"<div><b>{html.escape(type(self).__name__)}</b><table>{rows}</table></div>"


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``tensors`` and string ``metadata`` as one ``.safetensors`` file atomically, byte for byte the same
    for the same content (the header's keys are sorted; safetensors itself orders them by hash), with the SHA-256
    of the tensor bytes in the metadata (``sha256``) so ``read_safetensors`` detects damaged data. Returns the path."""
    raw = _st_bytes(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header.setdefault("__metadata__", {})["sha256"] = hashlib.sha256(raw[8 + n :]).hexdigest()
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    data = len(head).to_bytes(8, "little") + head + raw[8 + n :]
    return atomic_write(path, lambda p: p.write_bytes(data))


def read_safetensors(path: str | Path, *, what: str = "result") -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata without ``sha256``, {name: tensor}) of a safetensors file; raises ``InterpError`` naming the file
    when it is not a whole safetensors file (truncated, a pickle, corrupt header) or its tensor bytes do not match
    the ``sha256`` written by ``write_safetensors`` (files without one are read unchecked)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:  # safetensors raises its own error types for every kind of damage
        raise InterpError(f"{path} is not a readable {what} file: {str(e)[:160]} (truncated, damaged or not safetensors; "
                          "write it again)") from None
    digest = header.pop("sha256", None)
    if digest is not None:
        raw = Path(path).read_bytes()
        n = int.from_bytes(raw[:8], "little")
        if hashlib.sha256(raw[8 + n :]).hexdigest() != digest:
            raise InterpError(f"{path} is not a readable {what} file: its tensor bytes do not match the checksum it was "
                              "written with (damaged: write it again)")
    return header, tensors


def _to_json(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {k: _to_json(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_json(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    raise TypeError(f"cannot store a {type(v).__name__} in a result; use tensors, numbers, strings, lists or dicts")
