"""Every result class states each field's shape twice, in the docstring under the field (``"[layer, pos] ..."``, what a
reader sees) and in ``_shapes`` (what ``__post_init__`` checks): the two must say the same, so a documented shape is a
checked one and a checked one is documented (``interp.results``)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import textwrap

import interp
from interp.results import Result

_DIMS = re.compile(r"\[((?:\s*\w+\s*,)*\s*\w+\s*)\]")  # "[layer, pos, k]": names or sizes, nothing else


def _result_classes() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(interp.__path__, "interp."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, Result) and obj is not Result and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def _field_docs(cls: type) -> dict[str, str]:
    """{field: the string literal under it} over the class and its Result bases (a subclass's doc wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Result)) or klass is Result:
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = nxt.value.value
    return docs


def _mismatches(cls: type) -> list[str]:
    docs, shapes = _field_docs(cls), cls._shapes
    out = []
    for f in dataclasses.fields(cls):
        doc, spec = docs.get(f.name), shapes.get(f.name)
        if doc is None:
            out.append(f"{f.name}: no docstring under the field")
            continue
        m = _DIMS.match(doc)
        if m is None and spec is None:
            continue
        if m is None:
            out.append(f"{f.name}: _shapes says {spec!r}, the docstring names no shape")
        elif spec is None:
            out.append(f"{f.name}: the docstring says [{m.group(1)}], _shapes does not check it")
        else:
            said = [d.strip() for d in m.group(1).split(",")]
            checked = spec.split()
            # "_" in _shapes matches any documented dimension; a documented size (e.g. [2]) matches a named one
            if len(said) != len(checked) or any(c != "_" and s != c and not s.isdigit() for s, c in zip(said, checked)):
                out.append(f"{f.name}: the docstring says [{', '.join(said)}], _shapes says {spec!r}")
    return out


def test_result_classes_are_found():
    names = {c.__name__ for c in _result_classes()}
    assert {"TokenAttribution", "LensResult", "ExtremeTokenReport", "Subnetwork", "LatentLensResult"} <= names


def test_every_documented_shape_is_the_checked_shape():
    bad = {f"{c.__module__}.{c.__qualname__}": m for c in _result_classes() if (m := _mismatches(c))}
    assert not bad, bad


def test_the_check_sees_a_disagreement():
    """The test above would fail on a class whose docstring and ``_shapes`` differ, or on an undocumented field."""

    @dataclasses.dataclass(frozen=True)
    class Bad(Result):
        probs: object
        "[layer, pos] probabilities"
        ids: object
        "[pos] ids"
        count: int
        _shapes = {"probs": "layer head"}

    assert _mismatches(Bad) == ["probs: the docstring says [layer, pos], _shapes says 'layer head'",
                                "ids: the docstring says [pos], _shapes does not check it",
                                "count: no docstring under the field"]
