"""Base class of every analysis result: shape checks, save/load (safetensors + JSON), notebook HTML.

A result is a frozen dataclass. Tensor fields are stored in one ``.safetensors`` file; every other
field (strings, numbers, lists, dicts of those) goes as JSON into that file's metadata, so a result is
one file, never a pickle. Each field's shape is named in the docstring under it; subclasses declare the
same named shapes in ``_shapes`` and ``__post_init__`` checks that every named dimension agrees across
fields, list lengths included (a list field's length is its first dimension)::

    @dataclass(frozen=True)
    class LensResult(Result):
        tokens: list[str]
        "[pos] the prompt's token strings"
        probs: torch.Tensor
        "[layer, pos, k] top-k probabilities"
        _shapes = {"tokens": "pos", "probs": "layer pos k"}

Loading is strict: a file whose entries are not exactly the fields (one renamed, missing or extra) is an
``InterpError`` naming the file and the field, never a result with a ``None`` in it.
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
_OWN_FORMATS: dict[str, str] = {}  # {format tag: class name} of the result classes that write their own tag (no "type")


def check_shapes(obj: Any, shapes: dict[str, str]) -> dict[str, int]:
    """Check the fields of ``obj`` named in ``shapes`` against space-separated dimension names; return the sizes found.

    A tensor field has one size per name. A list (or tuple) field has the first name as its length and, with more
    names, nested lists of the next ones (``"layer pos k"``: ``[layer][pos][k]``). A dimension name used in several
    fields must have the same size in each; ``_`` matches anything; a field that is None is skipped when its
    default is None (an optional field).
    Tensors are checked before lists, so a message names the list that disagrees. Raises ``ValueError`` naming the
    field, the expected and the actual shape.
    """
    sizes: dict[str, int] = {}
    cls = type(obj).__name__
    optional = {f.name for f in dataclasses.fields(obj) if f.default is None} if dataclasses.is_dataclass(obj) else set(shapes)
    items = sorted(shapes.items(), key=lambda kv: not isinstance(getattr(obj, kv[0]), torch.Tensor))
    for name, spec in items:
        value = getattr(obj, name)
        if value is None and name in optional:
            continue
        dims = spec.split()
        if isinstance(value, torch.Tensor) and value.ndim == len(dims):
            found = [(d, {n}) for d, n in zip(dims, value.shape)]
        elif isinstance(value, (list, tuple)):
            found = list(zip(dims, _list_sizes(value, len(dims), f"{cls}.{name}")))
        else:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{cls}.{name} must have shape [{', '.join(dims)}], got {got}")
        for d, ns in found:
            if d == "_" or not ns:
                continue
            (n,) = ns
            if sizes.setdefault(d, n) != n:
                what = "has length" if isinstance(value, (list, tuple)) else f"dimension {d!r} is"
                raise ValueError(f"{cls}.{name}: {what} {n} but another field has {d!r} = {sizes[d]}")
    return sizes


def _list_sizes(value: list | tuple, depth: int, where: str) -> list[set[int]]:
    """The lengths found at each nesting level of ``value`` (one set per level; empty below an empty list).
    Raises ``ValueError`` when a level is ragged or not a list."""
    levels: list[set[int]] = [set() for _ in range(depth)]
    todo = [(value, 0)]
    while todo:
        v, i = todo.pop()
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{where} must be nested lists {depth} deep, found a {type(v).__name__} at depth {i}")
        levels[i].add(len(v))
        if i + 1 < depth:
            todo.extend((x, i + 1) for x in v)
    for i, ns in enumerate(levels):
        if len(ns) > 1:
            raise ValueError(f"{where}: the lists at depth {i} have different lengths {sorted(ns)}")
    return levels


class FileEntries:
    """The tensors and JSON fields read from a result file, handed to ``Result._from_entries``.

    ``take(name)`` removes one entry and returns it; a name that is not there is recorded in ``missing`` (and None
    returned). After decoding, ``Result.load`` refuses the file when anything is missing or left over (``left()``).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], fields: dict[str, Any]) -> None:
        self._items: dict[str, Any] = {**fields, **tensors}
        self.missing: list[str] = []

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def take(self, name: str) -> Any:
        """The entry ``name`` (a tensor or a JSON value), removed; None (and recorded as missing) when absent."""
        if name not in self._items:
            self.missing.append(name)
            return None
        return self._items.pop(name)

    def left(self) -> list[str]:
        """Names of the entries not taken (sorted)."""
        return sorted(self._items)


@dataclasses.dataclass(frozen=True)
class Result:
    """Base of every frozen result dataclass (see the module docstring).

    Class settings: ``_shapes`` (named shapes, checked in ``__post_init__``); ``_format`` (the file's format tag: the
    generic one plus a "type" entry naming the class, or a class's own tag, as ``Subnetwork`` files have); ``_what``
    (the word in error messages about its files); ``_later`` (fields added after files of the class were written: a
    file without one loads with the field's default). A class stored other than one entry per field overrides
    ``_file_entries`` and ``_from_entries``.
    """

    _shapes: ClassVar[dict[str, str]] = {}
    _format: ClassVar[str] = _FORMAT
    _what: ClassVar[str] = "result"
    _later: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_format", _FORMAT) != _FORMAT:
            _OWN_FORMATS[cls._format] = cls.__name__

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor) and (v.requires_grad or v.device.type != "cpu"):
                object.__setattr__(self, f.name, v.detach().cpu())
        check_shapes(self, self._shapes)

    # ---- persistence -------------------------------------------------------------------------
    def _file_entries(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able fields) to store: by default one entry per dataclass field, tensors as tensors."""
        tensors, meta = {}, {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                tensors[f.name] = v.contiguous()
            else:
                meta[f.name] = _to_json(v)
        return tensors, meta

    @classmethod
    def _from_entries(cls, entries: FileEntries) -> dict[str, Any]:
        """Constructor arguments from a file's entries (``FileEntries.take`` each); by default one per field, a field of
        ``_later`` only where the file has it."""
        return {f.name: entries.take(f.name) for f in dataclasses.fields(cls) if f.name not in cls._later or f.name in entries}

    def save(self, path: str | Path) -> Path:
        """Write this result to ``path`` (a ``.safetensors`` file) atomically; returns the path."""
        tensors, meta = self._file_entries()
        header = {"format": self._format, "fields": json.dumps(meta)}
        if self._format == _FORMAT:
            header["type"] = type(self).__name__
        return write_safetensors(path, tensors, header)

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        """Read a result written by ``save``; returns the result.

        Raises ``InterpError`` naming the file when it is missing, not a (whole) safetensors file, of another
        result type, or when its tensors and fields do not make a valid ``cls``: the message names each field that
        is missing (a tensor or JSON field renamed or dropped) or unknown, a shape that disagrees, metadata of the
        wrong type, tensor bytes that do not match the file's ``sha256``, or no ``sha256`` at all.
        """
        path = Path(path)
        if not path.is_file():
            raise InterpError(f"no {cls._what} file at {path}")
        header, tensors = read_safetensors(path, what=cls._what, require_checksum=False)
        checked = _has_checksum(path)
        fmt = header.get("format")
        kind = header.get("type") or _OWN_FORMATS.get(str(fmt))
        if fmt != cls._format or kind != cls.__name__:
            raise InterpError(f"{path} holds a {kind or 'non-interp'} result, not a {cls.__name__}")
        try:
            fields = json.loads(header["fields"])
        except (KeyError, TypeError, ValueError):
            raise InterpError(f"{path}: the result's metadata has no readable 'fields' entry (damaged file: write it again)") from None
        if not isinstance(fields, dict):
            raise InterpError(f"{path}: the result's 'fields' metadata is not a JSON object (the file is damaged: write it again)")
        both = sorted(set(tensors) & set(fields))
        entries = FileEntries(tensors, fields)
        try:
            kwargs = cls._from_entries(entries)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
            if not entries.missing:  # a missing entry explains the failure better than the exception it caused
                raise InterpError(f"{path} is not a valid {cls.__name__} file: {e}") from None
            kwargs = {}
        unknown, missing = entries.left(), entries.missing
        if unknown or missing or both:
            what = "; ".join(x for x in (unknown and f"unknown entries {unknown}", missing and f"missing fields {missing}",
                                          both and f"fields stored twice {both}") if x)
            raise InterpError(f"{path} is not a valid {cls.__name__} file ({what}): write it again with save()")
        try:
            result = cls(**kwargs)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
            raise InterpError(f"{path} is not a valid {cls.__name__} file: {e}") from None
        if not checked:  # last, so a damaged structure is named first; a well-formed file is still not read unchecked
            raise InterpError(f"{path} has no checksum (its 'sha256' metadata is missing: written by another tool or edited), "
                              f"so it cannot be trusted: write it again with {cls.__name__}.save()")
        return result

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


def _has_checksum(path: str | Path) -> bool:
    """Whether safetensors file ``path`` (already read by ``read_safetensors``) carries a ``sha256`` in its metadata."""
    with safe_open(str(path), framework="pt") as fh:
        return "sha256" in (fh.metadata() or {})


def read_safetensors(path: str | Path, *, what: str = "result", require_checksum: bool = True
                     ) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata without ``sha256``, {name: tensor}) of a safetensors file; raises ``InterpError`` naming the file
    when it is not a whole safetensors file (truncated, a pickle, corrupt header), its tensor bytes do not match
    the ``sha256`` written by ``write_safetensors``, or it has no ``sha256`` (unless ``require_checksum=False``: then
    the caller must refuse such a file itself, as ``Result.load`` does after naming any structural damage first)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:  # safetensors raises its own error types for every kind of damage
        raise InterpError(f"{path} is not a readable {what} file: {str(e)[:160]} (truncated, damaged or not safetensors; "
                          "write it again)") from None
    digest = header.pop("sha256", None)
    if digest is None and require_checksum:
        raise InterpError(f"{path} has no checksum (its 'sha256' metadata is missing: written by another tool or edited), "
                          f"so it cannot be trusted: write the {what} again")
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
