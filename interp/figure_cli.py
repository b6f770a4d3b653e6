"""``interp figure``: a figure as a static PNG or SVG file, from the command line, offline.

``interp figure KIND --out FILE.png|FILE.svg`` runs one analysis and writes its figure (``interp.viz.export``: the
machine's Chromium through kaleido, nothing downloaded):

- ``lens``: the logit-lens heat-map of ``--prompt`` (``--stat``; ``--target`` for target_prob / target_rank);
- ``sinks``: the [layer, head] sink map of ``--prompt`` (the extreme-token scan of that one text);
- ``attribution``: the attribution of the next token (or ``--target``) over ``--prompt`` (``--method``);
- ``compare``: two models side by side on ``--prompt`` (``--model`` and ``--model-b``; ``interp.compare``);
- ``json``: any plotly figure saved as JSON (``fig.write_json``) given with ``--from``.

``register(sub)`` adds the subcommand to the ``interp`` parser; bad input (an unknown suffix, an unwritable path, no
Chromium) is an ``InterpError``, exit 2 before any model is loaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interp.errors import InterpError

__all__ = ["register", "KINDS"]

KINDS = ("lens", "sinks", "attribution", "compare", "json")


def _out(value: str) -> Path:
    from interp.viz.export import FORMATS

    out = Path(value)
    if out.is_dir():
        raise InterpError(f"--out {out} is a folder: give a file name such as {out / 'figure.png'}")
    if out.suffix.lower().lstrip(".") not in FORMATS:
        raise InterpError(f"--out {value}: give a file name ending in {' or '.join('.' + f for f in FORMATS)}")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise InterpError(f"--out {out}: folder {out.parent} does not exist")
    return out


def _from_json(path: str | None):
    import plotly.graph_objects as go

    if path is None:
        raise InterpError("interp figure json needs --from FILE.json (a figure saved with fig.write_json)")
    p = Path(path)
    if not p.is_file():
        raise InterpError(f"--from {path}: no such file")
    try:
        return go.Figure(json.loads(p.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as e:
        raise InterpError(f"--from {path} is not a plotly figure in JSON ({str(e)[:120]}): save one with fig.write_json") from None


def _figure(a: argparse.Namespace, load):
    """The plotly figure of ``a.kind`` (``load(spec)`` loads a model with the command's options)."""
    from interp.models.options import chat_text
    from interp.prompts import default_prompt

    model = load(a.model)
    prompt = a.prompt if a.prompt is not None else default_prompt(model)
    prompt = chat_text(model, prompt, a)
    if a.kind == "lens":
        from interp.lens.logit import logit_lens
        from interp.viz.lens import lens_heatmap

        return lens_heatmap(logit_lens(model, prompt, target=a.target), a.stat or ("target_prob" if a.target else "final_prob"))
    if a.kind == "sinks":
        from interp.extreme import scan
        from interp.viz.extreme import sink_heatmap

        return sink_heatmap(scan(model, [prompt], progress=False))
    if a.kind == "attribution":
        from interp.attribution import attribute
        from interp.viz.attribution import token_figure

        return token_figure(attribute(model, prompt, target=a.target, method=a.method))
    from interp.compare import compare_models
    from interp.viz.compare import comparison_figure

    return comparison_figure(compare_models(model, load(a.model_b), prompt, target=a.target))


def _run(a: argparse.Namespace) -> int:
    from interp.models.options import check_chat_options, model_options
    from interp.viz.export import kaleido_options, save_figure

    out = _out(a.out)
    kaleido_options()  # kaleido and a Chromium are there: exit 2 before any model is loaded
    if a.kind == "compare" and not a.model_b:
        raise InterpError("interp figure compare needs a second model: --model-b NAME")
    if a.kind != "json" and a.source is not None:
        raise InterpError(f"--from is for 'interp figure json'; 'interp figure {a.kind}' runs --model on --prompt")
    if a.prompt is not None and not a.prompt.strip():
        raise InterpError("--prompt is empty: give at least one word")
    if a.kind == "json":
        fig = _from_json(a.source)
    else:
        opts = model_options(a)
        check_chat_options(a)
        from interp.models import load_model

        fig = _figure(a, lambda spec: load_model(spec, **opts))
    path = save_figure(fig, out, width=a.width, height=a.height, scale=a.scale)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.1f} kB)")
    return 0


def register(sub) -> None:
    """Add ``interp figure`` to the ``interp`` command's subparsers ``sub``."""
    from interp.models.options import add_chat_options, add_model_options

    f = sub.add_parser("figure", help="write a figure as a static PNG or SVG file (offline, with the machine's Chromium)")
    f.add_argument("kind", choices=KINDS, help="which figure: " + ", ".join(KINDS))
    f.add_argument("--out", required=True, help="the file to write: .png or .svg")
    f.add_argument("--model", default="stories", help="zoo name, named real model, local HF directory or .gguf (default: stories)")
    f.add_argument("--model-b", help="compare: the second model")
    f.add_argument("--prompt", help="the text (default: chosen by model, interp.prompts.default_prompt)")
    f.add_argument("--target", help="lens / attribution / compare: the target word")
    f.add_argument("--stat", help="lens: final_prob, entropy, kl, target_prob, target_rank (default: final_prob, or target_prob "
                                  "with --target)")
    f.add_argument("--method", default="gradient_norm", help="attribution: the method (default: gradient_norm)")
    f.add_argument("--from", dest="source", help="json: a plotly figure saved with fig.write_json")
    f.add_argument("--width", type=int, help="width in CSS pixels (default: the figure's own, else 700)")
    f.add_argument("--height", type=int, help="height in CSS pixels (default: the figure's own, else 500)")
    f.add_argument("--scale", type=float, default=1.0, help="PNG pixels per CSS pixel (default 1)")
    add_chat_options(f)
    add_model_options(f)
    f.set_defaults(func=_run)
