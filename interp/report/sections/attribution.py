"""Report section: the prompt's next token attributed by ReAGent, IG and occlusion, with their faithfulness.

``add_to_report(report, model, prompt, **options)`` is called by ``interp report``; every method at its defaults
(seconds on ``stories``, about 20 s on SmolLM2-135M on two cores); a method that fails is skipped and its error
shown in the report instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from interp.attribution.faithfulness import faithfulness, keep_probabilities
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


def add_to_report(report, model, prompt: str, *, methods: dict[str, dict] | None = None, target=None,
                  progress: Callable[[str, int, int], None] | None = None, next_ids: list[int] | None = None) -> None:
    """Attribute the greedy next token (or ``target``) with each method and add tokens + a faithfulness table.
    ``progress(what, done, total)``, when given, is told each of the 2 steps per method (attribution, faithfulness).
    ``next_ids``: the model's most likely next tokens when the report has computed them (the first is the target when
    none is given)."""
    if target is None and next_ids:
        target = next_ids[0]
    rows, keeps, n_sources = [], {}, 1
    chosen = methods or REPORT_METHODS
    tick = progress or (lambda what, done, total: None)
    total = 2 * len(chosen)
    for i, (method, opts) in enumerate(chosen.items()):
        try:
            tick(method, 2 * i, total)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                attr = attribute(model, prompt, target, method=method, **opts)
            add_attribution(report, attr, f"Token attribution: {method}")
            tick(f"{method} faithfulness", 2 * i + 1, total)
            f = faithfulness(model, attr, n_samples=4)
            rows.append([method, *(round(f[k], 4) for k in ("soft_ns_vs_random", "soft_nc_vs_random",
                                                              "hard_sufficiency", "hard_comprehensiveness"))])
            if f["soft_ns_vs_random"] < 0:
                rows_ = [attr.row(i).float() for i in range(attr.n_targets)]
                n_sources = max(n_sources, *(len(r) for r in rows_))
                keeps[method] = (sum(float(keep_probabilities(r).mean()) for r in rows_) / len(rows_),
                                 sum(float((r < 0).float().mean()) for r in rows_) / len(rows_))
        except Exception as e:  # one failing method must not sink the report
            report.add_error(f"Token attribution: {method}", f"{type(e).__name__}: {e}")
    tick("done", total, total)
    if rows:
        report.add_table(
            "Token attribution: faithfulness",
            ["method", "soft NS ln(vs random)", "soft NC ln(vs random)", "hard sufficiency", "hard comprehensiveness"], rows,
            caption="Higher is better. ln(metric / random importances): > 0 means more faithful than random."
                    + _below_random(keeps, n_sources),
        )


def _below_random(keeps: dict[str, tuple[float, float]], n_sources: int) -> str:
    """One sentence on why the methods in ``keeps`` ({method: (mean keep probability, share of negative scores)}) score
    below random on soft NS, with random importances' mean keep probability over ``n_sources`` tokens; empty when
    there are none."""
    if not keeps:
        return ""
    g = torch.Generator().manual_seed(0)
    rand = float(keep_probabilities(torch.softmax(torch.rand(64, max(2, n_sources), generator=g, dtype=torch.float64), -1)).mean())
    said = "; ".join(f"{m} {k:.2f}" + (f", {neg:.0%} of its scores negative" if neg > 0 else "") for m, (k, neg) in keeps.items())
    return (f" Below random on soft NS (mean keep probability: {said}; random importances about {rand:.2f}): soft "
            "sufficiency keeps each token's embedding elements with its min-max scaled score, so a method that "
            "concentrates its scores, or gives negative scores to tokens that lower the target (min-max sends those to 0, "
            "always dropped), keeps less of the prompt than random importances do, and so can score lower whatever its ranking; "
            "hard sufficiency, at equal token counts, compares the rankings alone.")
