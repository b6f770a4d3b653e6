"""The options every command that runs a model shares: ``--device``, ``--dtype``, ``--threads`` (and, for the commands
that take a prompt, ``--chat`` / ``--system``).

``add_model_options(parser)`` adds them (one definition for ``interp report``, ``interp scan``, ``interp index ...``);
``model_options(args)`` checks them before any work and returns ``{"device": ..., "dtype": ...}`` for ``load_model``
after setting the torch thread count. A bad value is an ``InterpError`` naming it and the allowed ones (the commands
print it as one line, exit 2).
"""

from __future__ import annotations

import argparse

import torch

from interp.errors import InterpError
from interp.models.loading import checked_device

__all__ = ["MODEL_DTYPES", "add_model_options", "model_options", "parse_dtype", "parse_threads", "check_device",
           "add_chat_options", "check_chat_options", "chat_text"]

MODEL_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""The weight and compute precisions a command may load a model in (``--dtype``), by name."""


def add_model_options(parser: argparse.ArgumentParser, *, dtype_flag: str = "--dtype", device_default: str = "the GPU when "
                      "there is one") -> None:
    """Add ``--device``, ``dtype_flag`` (``--dtype``) and ``--threads`` to ``parser``; values are checked by ``model_options``
    (kept as strings here so that a bad value is one line naming the allowed ones, not argparse's usage text)."""
    parser.add_argument("--device", help=f"cpu, cuda, cuda:N or mps (default: {device_default})")
    parser.add_argument(dtype_flag, dest="model_dtype", metavar="DTYPE",
                        help=f"precision the model is loaded and run in: {', '.join(MODEL_DTYPES)} (default float32)")
    parser.add_argument("--threads", help="CPU threads torch may use (default: torch's own choice, usually the core count)")


def parse_dtype(value: str | None, flag: str = "--dtype") -> torch.dtype | None:
    """The torch dtype named ``value`` (None stays None: the loader's float32); ``InterpError`` naming the allowed ones."""
    if value is None:
        return None
    name = str(value).strip().lower().removeprefix("torch.")
    if name not in MODEL_DTYPES:
        raise InterpError(f"{flag} {value!r} is not a model precision: use one of {', '.join(MODEL_DTYPES)}")
    return MODEL_DTYPES[name]


def parse_threads(value: str | int | None) -> int | None:
    """``--threads`` as a whole number >= 1 (None stays None: torch's default); ``InterpError`` otherwise."""
    if value is None:
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InterpError(f"--threads {value!r} is not a whole number: give a count of 1 or more, e.g. --threads 4") from None
    if n < 1:
        raise InterpError(f"--threads {n} is below 1: give a count of 1 or more, e.g. --threads 4")
    return n


def check_device(value: str | None) -> str | None:
    """``--device`` normalised (``"cuda"``, ``"cuda:1"``, ``"cpu"``; None stays None); ``InterpError`` for an unknown
    device or one this machine does not have (``--device cuda`` without a CUDA GPU), before any model is loaded."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError):
        raise InterpError(f"--device {text!r} is not a device: use one of cpu, cuda, cuda:N, mps") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InterpError(f"--device {text!r} is not supported: use one of cpu, cuda, cuda:N, mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InterpError(f"--device {text!r}: this torch sees no CUDA GPU on this machine: use --device cpu "
                          "(or install a CUDA build of torch)")
    return checked_device(text)  # the GPU index and MPS availability, as load_model checks them


def model_options(args: argparse.Namespace, *, dtype_flag: str = "--dtype") -> dict:
    """Check ``args.device``, ``args.model_dtype`` and ``args.threads`` (added by ``add_model_options``), set
    ``torch.set_num_threads`` when ``--threads`` is given, and return ``{"device": str | None, "dtype": torch.dtype | None}``
    for ``load_model``. Raises ``InterpError`` (one line: the bad value and the allowed ones) before anything runs."""
    dtype = parse_dtype(getattr(args, "model_dtype", None), dtype_flag)
    threads = parse_threads(getattr(args, "threads", None))
    device = check_device(getattr(args, "device", None))
    if threads is not None:
        torch.set_num_threads(threads)
    return {"device": device, "dtype": dtype}


def add_chat_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--chat`` and ``--system`` (a prompt-taking command wraps its prompt in the model's chat template)."""
    parser.add_argument("--chat", action="store_true",
                        help="wrap the prompt as a user message in the model's chat template (instruct models, e.g. smollm2-135m)")
    parser.add_argument("--system", help="with --chat: a system message before the user's")


def check_chat_options(args: argparse.Namespace) -> None:
    """``InterpError`` for ``--system`` without ``--chat`` (checked before any work)."""
    if getattr(args, "system", None) is not None and not getattr(args, "chat", False):
        raise InterpError("--system is the system message of a chat prompt: add --chat (for an instruct model)")


def chat_text(model, prompt: str, args: argparse.Namespace) -> str:
    """``prompt`` wrapped by ``interp.models.chat.chat_prompt`` when ``args.chat`` is set (with ``args.system``), else
    ``prompt`` unchanged. Raises ``InterpError`` when the model has no chat template."""
    if not getattr(args, "chat", False):
        return prompt
    from interp.models.chat import chat_prompt

    return chat_prompt(model, prompt, system=getattr(args, "system", None))
