"""``SinkExplorer``: attention sinks, value drains, residual peaks and massive activations of a prompt, with
layer/head pickers, the detection thresholds as sliders and an active/dormant comparison across domains."""

from __future__ import annotations

import dataclasses

import ipywidgets as W

from interp.errors import InterpError
from interp.extreme.activity import head_activity
from interp.extreme.prompt import inspect_prompt
from interp.extreme.report import Thresholds
from interp.extreme.scan import scan
from interp.report import Report
from interp.viz.extreme import activity_bars, attention_pattern, massive_scatter, norms_by_position, sink_heatmap, summary_rows
from widgets.base import Explorer, Figure, html_table, show_figure


def parse_domains(text: str) -> dict[str, list[str]]:
    """Domains from lines ``name: text`` (several lines may share a name). Raises ``InterpError`` on a bad line."""
    out: dict[str, list[str]] = {}
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        name, sep, body = line.partition(":")
        if not sep or not name.strip() or not body.strip():
            raise InterpError(f"domain line {i + 1} must read 'name: some text', got {line.strip()[:40]!r}")
        out.setdefault(name.strip(), []).append(body.strip())
    if len(out) < 1:
        raise InterpError("give at least one domain, one 'name: text' per line")
    return out


class SinkExplorer(Explorer):
    """Extreme tokens of a prompt (and an optional corpus), explored interactively.

    Controls: prompt (default: ``interp.prompts.default_prompt``), corpus (extra texts scanned with the prompt, one
    per line), layer and head of the pattern / value views, heat-map metric, the thresholds (sink, drain, peak, massive
    |a|, massive ratio) as sliders, and a domain box (``name: text`` lines) whose "Compare domains" button runs
    ``head_activity`` on them, ablating the "ablate" heads whose sink score differs most (all heads of a small model,
    20 of a larger one: each head costs two forward passes per domain on a CPU).
    Changing the sink/drain/peak sliders only re-labels; the massive-activation sliders rescan.
    """

    title = "Sink explorer"

    def __init__(self, model, prompt: str | None = None, *, corpus: list[str] | None = None, domains: str = "",
                 export_path: str = "sinks.html"):
        self.model = model
        t = Thresholds()
        n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
        lay = dict(width="250px")
        self.prompt = self.prompt_box(model, prompt, width="520px")
        self.corpus = W.Textarea(value="\n".join(corpus or []), description="corpus", placeholder="more texts, one per line",
                                 layout=W.Layout(width="520px", height="60px"))
        self.layer = W.Dropdown(options=list(range(n_l)), value=min(1, n_l - 1), description="layer", layout=W.Layout(width="150px"))
        self.head = W.Dropdown(options=list(range(n_h)), value=0, description="head", layout=W.Layout(width="150px"))
        self.metric = W.Dropdown(options=["sink_score", "gu_share", "drain_ratio"], value="sink_score", description="heat-map",
                                 layout=W.Layout(width="230px"))
        self.sink = W.FloatSlider(value=t.sink, min=0.0, max=1.0, step=0.01, description="sink ≥", layout=W.Layout(**lay))
        self.drain = W.FloatSlider(value=t.drain, min=0.0, max=1.0, step=0.01, description="drain ≤", layout=W.Layout(**lay))
        self.peak = W.FloatSlider(value=t.peak, min=1.0, max=10.0, step=0.1, description="peak ≥", layout=W.Layout(**lay))
        self.m_abs = W.FloatLogSlider(value=t.massive_abs, base=10, min=0, max=4, step=0.1, description="|a| >", layout=W.Layout(**lay))
        self.m_ratio = W.FloatLogSlider(value=t.massive_ratio, base=10, min=1, max=5, step=0.1, description="ratio >",
                                        layout=W.Layout(**lay))
        self.domains = W.Textarea(value=domains, description="domains", placeholder="code: def f(x): return x\nprose: the cat sat",
                                  layout=W.Layout(width="520px", height="70px"))
        self.go_button = self.button("Run", primary=True)
        self.n_ablate = W.BoundedIntText(value=min(n_l * n_h, 20 if n_l * n_h > 48 else n_l * n_h), min=1, max=n_l * n_h,
                                         description="ablate", tooltip="heads to ablate: those whose sink score differs most",
                                         layout=W.Layout(width="160px"))
        self.cmp_button = self.button("Compare domains", self.compare, icon="balance-scale")
        self.summary = W.HTML("")
        self.fig_heat, self.fig_pattern, self.fig_norms, self.fig_massive, self.fig_domains = (Figure() for _ in range(5))
        controls = [self.prompt, self.corpus, self.layer, self.head, self.metric, self.sink, self.drain, self.peak, self.m_abs,
                    self.m_ratio, self.go_button, self.domains, self.n_ablate, self.cmp_button]
        view = [self.summary, self.fig_heat, self.fig_pattern, self.fig_norms, self.fig_massive, self.fig_domains]
        super().__init__(controls, view, export_path=export_path)
        self.report = self.view = self.activity = None
        self.rerun_on([self.layer, self.head, self.metric, self.sink, self.drain, self.peak], self.redraw)
        self.rerun_on([self.m_abs, self.m_ratio])
        self.run()

    # ---- computing --------------------------------------------------------------------------
    def thresholds(self) -> Thresholds:
        return Thresholds(sink=self.sink.value, drain=self.drain.value, peak=self.peak.value, massive_abs=self.m_abs.value,
                          massive_ratio=self.m_ratio.value)

    def render(self) -> None:
        """Scan prompt + corpus, inspect the prompt, redraw everything."""
        texts = [self.prompt.value] + [x for x in self.corpus.value.splitlines() if x.strip()]
        self.progress(0, 2)
        self.report = scan(self.model, texts, thresholds=self.thresholds(), progress=False)
        self.progress(1, 2)
        self.view = inspect_prompt(self.model, self.prompt.value)
        self.progress(2, 2)
        self.redraw()

    def redraw(self) -> None:
        """Re-apply the sliders' thresholds to the last scan and redraw (no model call)."""
        if self.report is None:
            raise InterpError("nothing scanned yet: press Run")
        t = dataclasses.asdict(self.thresholds())
        keep = {k: t[k] for k in ("sink", "drain", "peak")}
        self.report = dataclasses.replace(self.report, thresholds={**self.report.thresholds, **keep})
        r, layer, head = self.report, self.layer.value, self.head.value
        self.summary.value = html_table(None, summary_rows(r))
        show_figure(self.fig_heat, sink_heatmap(r, self.metric.value))
        show_figure(self.fig_pattern, attention_pattern(self.view, layer, head))
        show_figure(self.fig_norms, norms_by_position(self.view, layer, head))
        show_figure(self.fig_massive, massive_scatter(self.view, r))

    def compare(self) -> None:
        """Run ``head_activity`` on the domains box (ablating the ``ablate`` heads whose sink score differs most across
        the domains; all heads when it is the model's head count) and draw the per-domain bars."""
        doms = parse_domains(self.domains.value)
        n = self.n_ablate.value
        heads = None if n >= self.model.cfg.n_layers * self.model.cfg.n_heads else n
        self.activity = head_activity(self.model, doms, heads=heads, progress=False)
        show_figure(self.fig_domains, activity_bars(self.activity))

    # ---- export -----------------------------------------------------------------------------
    def add_to_report(self, report: Report) -> None:
        title = "Extreme tokens"
        if self.report is None:
            raise InterpError("nothing to export yet: press Run")
        report.add_table(title, ["finding", "value"], summary_rows(self.report))
        shown = [self.fig_heat, self.fig_pattern, self.fig_norms, self.fig_massive]
        self.add_figures(report, title, shown + ([self.fig_domains] if self.activity is not None else []))
