"""The first section of every report: the model's facts, the prompt shaded by surprisal, the top next tokens."""

from __future__ import annotations

from interp.models import model_name, n_parameters
from interp.predict import predict
from interp.report.document import Report
from interp.viz.common import visible
from interp.viz.tokens import TokenView


def add_to_report(report: Report, model, prompt: str) -> None:
    """Add the "Model" table and the "Prompt" section (tokens shaded by surprisal, top next tokens) for ``prompt``."""
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
