"""Report section: the prompt's next token attributed by ReAGent, IG and occlusion, with their faithfulness.

``add_to_report(report, model, prompt, **options)`` is called by ``interp report``; every method at its defaults
(seconds on ``stories``, about 20 s on SmolLM2-135M on two cores); a method that fails is skipped and its error
shown in the report instead.
"""

from __future__ import annotations

import warnings

from interp.attribution.faithfulness import faithfulness
from interp.attribution.registry import attribute
from interp.attribution.result import TokenAttribution
from interp.viz.attribution import matrix_figure
from interp.viz.tokens import TokenView

__all__ = ["add_to_report", "add_attribution", "REPORT_METHODS"]

REPORT_METHODS = {"reagent": {}, "integrated_gradients": {}, "occlusion": {}}  # each at its defaults


def add_attribution(report, attr: TokenAttribution, title: str | None = None) -> None:
    """Add one attribution: coloured tokens per target (a matrix too for several targets)."""
    title = title or f"Attribution ({attr.method})"
    for i in range(attr.n_targets):
        row = attr.row(i).tolist()
        hover = [f"{t!r}: {v:+.4g}" for t, v in zip(attr.source_tokens, row)]
        caption = f"Sources of target {attr.target_tokens[i]!r} by {attr.method}; red raises the target, blue lowers it."
        if attr.completeness_error is not None:
            caption += f" IG completeness error {float(attr.completeness_error[i]):.2%}."
        report.add_tokens(title, TokenView(attr.source_tokens[: len(row)], row, hover, caption=caption))
    if attr.n_targets > 1:
        report.add_figure(title, matrix_figure(attr))


def add_to_report(report, model, prompt: str, *, methods: dict[str, dict] | None = None, target=None) -> None:
    """Attribute the greedy next token (or ``target``) with each method and add tokens + a faithfulness table."""
    rows = []
    for method, opts in (methods or REPORT_METHODS).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                attr = attribute(model, prompt, target, method=method, **opts)
            add_attribution(report, attr, f"Token attribution: {method}")
            f = faithfulness(model, attr, n_samples=4)
            rows.append([method, *(round(f[k], 4) for k in ("soft_ns_vs_random", "soft_nc_vs_random",
                                                              "hard_sufficiency", "hard_comprehensiveness"))])
        except Exception as e:  # one failing method must not sink the report
            report.add_error(f"Token attribution: {method}", f"{type(e).__name__}: {e}")
    if rows:
        report.add_table(
            "Token attribution: faithfulness",
            ["method", "soft NS ln(vs random)", "soft NC ln(vs random)", "hard sufficiency", "hard comprehensiveness"], rows,
            caption="Higher is better. ln(metric / random importances): > 0 means more faithful than random.",
        )
