"""GGUF files as hooked models: dequantize once through transformers, keep an HF-format copy.

No TransformerLens entry point loads a GGUF file. transformers can read one (``gguf_file=``; needs the
``gguf`` package) and dequantizes it to float, but refuses to save such a model. ``hf_folder(path)``
converts a GGUF file into a plain Hugging Face folder (safetensors, float32, no ``quantization_config``)
in the cache, keyed by the SHA-256 of the file's bytes, and returns it; a second call finds it and does
not dequantize again, and a changed file gets a new folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from interp.errors import InterpError
from interp.io import atomic_write_dir
from interp.paths import cache_dir

__all__ = ["hf_folder", "file_sha256", "architecture", "supported_architectures"]

log = logging.getLogger(__name__)
_HASHES: dict[tuple[str, int, int], str] = {}
MARKER = "interp-gguf.json"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (memoised per path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def _need_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise InterpError("loading a .gguf file needs the 'gguf' package: pip install gguf (or pip install -e .[real])") from None


def architecture(path: str | Path) -> str:
    """The ``general.architecture`` field of a GGUF file (e.g. "llama", "gemma3")."""
    _need_gguf()
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except KeyError:
        raise InterpError(f"{path} is a GGUF file without a general.architecture field; it cannot be loaded") from None
    except Exception as e:  # the reader raises ValueError/struct errors on a file that is not GGUF
        raise InterpError(f"{path} is not a readable GGUF file ({type(e).__name__}: {e})") from None


def supported_architectures() -> list[str]:
    """GGUF architectures that the installed transformers can dequantize."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(GGUF_SUPPORTED_ARCHITECTURES)


def hf_folder(path: str | Path, *, trust_remote_code: bool = False) -> Path:
    """The cached Hugging Face folder converted from the GGUF file ``path`` (converting it if needed).

    Returns the folder's path (``<cache>/gguf/<name>-<sha256[:16]>``). Raises ``InterpError`` when the file
    is missing, is not GGUF, or holds an architecture transformers cannot dequantize (the message lists
    the supported ones).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InterpError(f"no such GGUF file: {p}")
    digest = file_sha256(p)
    out = cache_dir("gguf") / f"{p.stem}-{digest[:16]}"
    marker = out / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("sha256") == digest:
                return out
        except (OSError, ValueError):
            pass
    arch = architecture(p)
    supported = supported_architectures()
    if arch not in supported and arch.replace("_", "-") not in supported:
        raise InterpError(
            f"{p.name}: GGUF architecture {arch!r} cannot be dequantized by the installed transformers; "
            f"supported: {', '.join(supported)}"
        )
    log.info("converting %s (%s) to a Hugging Face folder in %s", p.name, arch, out)
    atomic_write_dir(out, lambda tmp: _convert(p, tmp, digest, arch, trust_remote_code))
    return out


def _convert(path: Path, out: Path, digest: str, arch: str, trust_remote_code: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), trust_remote_code=trust_remote_code,
                                                 gguf_file=path.name, dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # transformers will not save a model it loaded from GGUF: build a plain one and move the weights in
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=trust_remote_code)
    plain.load_state_dict(model.state_dict(), assign=True, strict=True)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    plain.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("quantization_config", None)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    info = {"sha256": digest, "source": os.fspath(path), "architecture": arch, "dtype": "float32"}
    (out / MARKER).write_text(json.dumps(info, indent=2))
