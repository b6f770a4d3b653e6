"""The ``interp`` command line: ``interp report`` and ``interp models``.

Errors in the user's input are printed as one line ``interp: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interp.errors import InterpError, run_command

REPORT_NEW_TOKENS = 8
"""Tokens the report generates after the prompt (the steered continuations): the prompt must leave this much room."""


def _models(_: argparse.Namespace) -> int:
    from interp.zoo import ZOO_MODELS, zoo_path

    for name, desc in ZOO_MODELS.items():
        state = "ready" if (zoo_path(name) / "config.json").exists() else "missing (python -m interp.zoo train " + name + ")"
        print(f"{name:18s} {desc} [{state}]")
    from interp.models import REAL_MODELS, is_installed

    for name, m in REAL_MODELS.items():
        state = "installed" if is_installed(name) else f"not installed: {m.install}"
        print(f"{name:18s} {m.description} [{state}]")
    from interp.models.vlm import VLM_MODELS

    for name, v in VLM_MODELS.items():
        state = "ready" if is_installed(v.base) else f"needs {v.base}: {REAL_MODELS[v.base].install}"
        print(f"{name:18s} {v.description} [{state}]")
    print("Also: a .gguf file, any local Hugging Face directory, or a hub name such as 'gpt2' (needs network access).")
    return 0


def _report(a: argparse.Namespace) -> int:
    from interp.models.options import check_chat_options, model_options
    from interp.validate import check_text

    opts = model_options(a)  # --device, --dtype, --threads: a bad value is exit 2 before any work
    check_chat_options(a)
    if a.prompt is not None and not a.prompt.strip():
        raise InterpError("--prompt is empty: give at least one word")
    if a.prompt is not None:
        check_text("--prompt", a.prompt)  # bytes that are not UTF-8 arrive as lone surrogates: exit 2 before any work
    out = Path(a.out)
    if out.is_dir():
        raise InterpError(f"--out {out} is a folder: give a file name such as {out / 'report.html'}")
    if not out.parent.exists():
        raise InterpError(f"--out {out}: folder {out.parent} does not exist")
    if a.subnetwork and not Path(a.subnetwork).is_file():
        raise InterpError(f"--subnetwork {a.subnetwork}: no such file")
    if a.image is not None:
        from interp.models.vision import to_image

        to_image(Path(a.image), where="--image")  # missing, not an image, huge, transparent: exit 2 before any work
    from interp.models import load_model, to_tokens
    from interp.models.options import chat_text
    from interp.prompts import default_prompt
    from interp.report import build_report

    model = load_model(a.model, **opts)
    if a.image is not None:
        from interp.models.vision import is_vlm

        if not is_vlm(model):
            raise InterpError(f"--image: model {a.model!r} is a text-only model and cannot take images: give a "
                              "vision-language model (e.g. --model scenes-vlm)")
    if a.prompt is None:  # the model's own default, cut to leave room for the generated tokens
        a.prompt = default_prompt(model, room=REPORT_NEW_TOKENS)
    a.prompt = chat_text(model, a.prompt, a)  # --chat: the prompt as a user turn; no template is exit 2 naming the model
    n_prompt, n_ctx = to_tokens(model, a.prompt).shape[-1], int(getattr(model.cfg, "n_ctx", 0) or 0)
    if n_ctx and n_prompt + REPORT_NEW_TOKENS > n_ctx:
        raise InterpError(f"--prompt has {n_prompt} tokens; the report generates {REPORT_NEW_TOKENS} more and the model's "
                          f"context is {n_ctx}: shorten the prompt to at most {n_ctx - REPORT_NEW_TOKENS} tokens")
    if a.subnetwork:
        from interp.subnetworks import Subnetwork

        Subnetwork.load(a.subnetwork, model)  # a damaged file or one made for another model: exit 2 before any work
    options = {"subnetwork": a.subnetwork} if a.subnetwork else {}
    if a.image is not None:
        options["image"] = Path(a.image)
    report = build_report(model, a.prompt, progress=not a.quiet, **options)
    path = report.save(out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(report.sections)} sections)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from interp.models.options import add_chat_options, add_model_options

    p = argparse.ArgumentParser(prog="interp", description="Interpretability workbench for transformer LMs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="run every analysis on a prompt and write one self-contained HTML report")
    r.add_argument("--model", default="stories", help="zoo name, local HF directory or hub name (default: stories)")
    r.add_argument("--prompt", default=None, help="text to analyse (default: chosen by model, interp.prompts.default_prompt)")
    r.add_argument("--out", default="report.html", help="output HTML file (default: report.html)")
    r.add_argument("--image", help="an image file for a vision-language model: adds the visual-token section")
    r.add_argument("--subnetwork", help="a saved bigram subnetwork (.safetensors) to add its section")
    add_chat_options(r)
    add_model_options(r)
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_report)
    m = sub.add_parser("models", help="list the bundled models")
    m.set_defaults(func=_models)
    from interp.scale.cli import register as register_scale  # interp index build/search, interp scan

    register_scale(sub)
    from interp.figure_cli import register as register_figure  # interp figure: a PNG / SVG file of one figure

    register_figure(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 2 bad input, 130 Ctrl-C, 143 SIGTERM)."""
    from interp.io import Terminated

    args = build_parser().parse_args(argv)
    try:
        return run_command("interp", lambda: args.func(args))
    except Terminated:
        print("interp: terminated; nothing was written", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
