"""Which analyses ``interp report`` runs, in order.

Each capability package may provide a module ``interp.<package>.report`` with a function
``add_to_report(report, model, prompt, **options)``; ``PROVIDERS`` lists them. A provider whose module
is not there yet is skipped; one that raises is shown as an error section and the report still saves.
"""

from __future__ import annotations

import importlib
import sys

from tqdm.auto import tqdm

from interp.models import model_name, n_parameters
from interp.predict import predict
from interp.report.document import Report, TokenView
from interp.viz.common import visible

PROVIDERS = [
    ("Lenses", "interp.lens.report"),
    ("Extreme tokens", "interp.extreme.report"),
    ("Token attribution", "interp.attribution.report"),
    ("Steering", "interp.steering.report"),
    ("Bigram subnetwork", "interp.subnetworks.report"),
]


def add_overview(report: Report, model, prompt: str) -> None:
    """Model facts, the prompt as tokens shaded by surprisal, and the top next tokens."""
    cfg = model.cfg
    params = n_parameters(model)
    report.add_table(
        "Model",
        ["name", "layers", "d_model", "heads", "vocabulary", "context", "parameters"],
        [[model_name(model), cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_vocab, cfg.n_ctx, f"{params:,}"]],
    )
    pred = predict(model, prompt)
    hover = [f"surprisal {s:.3f} nats" for s in pred.surprisal.tolist()]
    report.add_tokens(
        "Prompt",
        TokenView(pred.tokens, pred.surprisal.tolist(), hover, caption="Each token shaded by its surprisal under the model."),
    )
    report.add_table(
        "Prompt", ["next token", "probability"], [[visible(t), p] for t, p in zip(pred.next_tokens, pred.next_probs.tolist())],
        caption="The model's top next tokens after the prompt.",
    )


def build_report(model, prompt: str | None = None, *, progress: bool = True, **options) -> Report:
    """Run the overview and every available provider on ``prompt`` (default: ``interp.prompts.default_prompt``,
    chosen by model); returns the ``Report`` (not saved)."""
    if prompt is None:
        from interp.prompts import default_prompt

        prompt = default_prompt(model)
    report = Report(f"Interpretability report: {model_name(model)}", subtitle=f"prompt: {prompt}")
    add_overview(report, model, prompt)
    for title, module in tqdm(PROVIDERS, desc="report", disable=not progress):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue  # this capability is not built yet
            mod = e
        try:
            if isinstance(mod, Exception):
                raise mod
            mod.add_to_report(report, model, prompt, **options)
        except Exception as e:  # one failing analysis must not lose the others
            print(f"interp report: section {title!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
            report.add_error(title, f"{type(e).__name__}: {e}")
    return report
