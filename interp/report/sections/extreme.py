"""``interp report`` section for extreme tokens: sink heat-map, named heads, norms by position, massive activations."""

from __future__ import annotations

from collections.abc import Callable

from interp.extreme.prompt import inspect_prompt
from interp.extreme.report import Thresholds
from interp.extreme.scan import scan
from interp.report.document import Report


def add_to_report(report: Report, model, prompt: str, *, texts: list[str] | None = None, thresholds: Thresholds | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> None:
    """Add the "Extreme tokens" section for ``prompt`` (and ``texts``, when given, as the scanned corpus).

    One streaming scan and one cached forward pass of the prompt: a few seconds on ``stories``. ``progress(what, done,
    total)``, when given, is told the 3 steps (scan, the prompt's cached pass, figures) and the end.
    """
    from interp.viz.extreme import attention_pattern, massive_scatter, norms_by_position, sink_heatmap, summary_rows, top_head_rows

    tick = progress or (lambda what, done, total: None)
    title = "Extreme tokens"
    tick(f"scan of {len(texts or [prompt])} text(s)", 0, 3)
    r = scan(model, texts or [prompt], thresholds=thresholds, progress=False)
    tick("the prompt's cached pass", 1, 3)
    view = inspect_prompt(model, prompt)
    tick("figures", 2, 3)
    t = r.thresholds
    report.add_text(title, (
        f"Attention sinks, value-state drains, residual peaks and massive activations over {r.n_texts} text(s), "
        f"{r.n_tokens} tokens. Sink head: mean attention on the first token from later queries ≥ {t['sink']} and ≥ "
        f"{t['sink_over_uniform']}× the uniform-attention baseline ({r.uniform_sink:.3f}). Drain head: first-token value norm ≤ "
        f"{t['drain']}× the median of the others. Peak layer: first-token residual norm ≥ {t['peak']}× the median of the others. "
        f"Massive activation: |a| > {t['massive_abs']:g} and > {t['massive_ratio']:g}× the layer's median |a|."
    ))
    report.add_table(title, ["finding", "value"], summary_rows(r))
    n_l, n_h = r.sink_score.shape
    if n_l * n_h > 12:
        report.add_table(title, ["#", "sink head", "sink score", "drain head", "drain ratio"], top_head_rows(r, 10),
                         caption="The 10 highest sink scores and the 10 lowest first-token value ratios; every head is in "
                                 "the layer x head heat-maps below.")
    report.add_figure(title, sink_heatmap(r, "sink_score"))
    report.add_figure(title, sink_heatmap(r, "drain_ratio"))
    best = max(((a, b) for a in range(r.sink_score.shape[0]) for b in range(r.sink_score.shape[1])),
               key=lambda lh: float(r.sink_score[lh]))
    report.add_figure(title, attention_pattern(view, *best), caption=f"The head with the highest sink score, L{best[0]}H{best[1]}.")
    report.add_figure(title, norms_by_position(view, *best))
    report.add_figure(title, massive_scatter(view, r))
    add_layer_tables(report, title, r)
    tick("done", 3, 3)


def add_layer_tables(report: Report, title: str, r) -> None:
    """Add the per-layer residual-peak table and the largest massive activations of scan result ``r`` to ``report``
    (shared by this section and the ``interp scan`` corpus report)."""
    report.add_table(title, ["layer", "resid first", "max other", "median other", "ratio", "top |a|", "median |a|"], [
        [i, float(r.resid_first[i]), float(r.resid_other_max[i]), float(r.resid_other_median[i]), float(r.peak_ratio[i]),
         float(r.top_abs[i]), float(r.median_abs[i])] for i in range(r.resid_first.shape[0])
    ], caption="Residual-state peak and largest activations per layer (means over texts).")
    if r.massive:
        report.add_table(title, ["layer", "text", "position", "dimension", "value", "token"], [list(e) for e in r.massive[:20]],
                         caption="Massive activations (largest first).")
