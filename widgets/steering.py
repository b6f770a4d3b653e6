"""``SteeringPlayground``: steer a model with fitted vectors and compare continuations and log-prob gaps."""

from __future__ import annotations

import html

import ipywidgets as W
import plotly.graph_objects as go
import torch

from interp.errors import InterpError
from interp.predict import greedy_continuation
from interp.report import Report
from interp.steering import ContrastExample, SteeringVectors, VisionContrast
from interp.steering.scoring import contrast_gaps, encode
from interp.viz.common import base_layout, label
from widgets.base import Explorer, Figure, html_table, show_figure
from widgets.image_prompt import join_prompt, split_prompt, token_strip

__all__ = ["SteeringPlayground"]


class SteeringPlayground(Explorer):
    """Prompt (default: ``interp.prompts.default_prompt``), method, layer and alpha controls; shows the unsteered and
    steered greedy continuations side by side, the log-prob gap log P(preferred) − log P(dispreferred) for both, and
    the gap as a function of alpha.

    ``vectors``: one ``SteeringVectors`` or a dict name -> vectors (e.g. {"grains": ..., "mean_difference": ...}).

    Images: on a vision-language model ``prompt`` may be a list of text and image parts (``interp.models.vision``); the
    parts up to the last image stay fixed, the text box edits the text after it, and the prompt shows as its token
    strip with the visual tokens named ``<img R,C>``. Continuations and gaps are computed with the image in place
    (``interp.attribution.vision.visual_inputs``: the connector's output at the image slots, steering applied after).
    """

    title = "Steering playground"

    def __init__(self, model, vectors, prompt: str | list | None = None, preferred: str = "", dispreferred: str = "",
                 alpha: float = 4.0, max_alpha: float = 20.0):
        self.model = model
        self.fixed, prompt = split_prompt(model, prompt, "SteeringPlayground")
        self.sets = {vectors.method: vectors} if isinstance(vectors, SteeringVectors) else dict(vectors)
        if not self.sets:
            raise InterpError("SteeringPlayground needs at least one SteeringVectors")
        first = next(iter(self.sets.values()))
        self.prompt = self.prompt_box(model, prompt, width="320px")
        self.preferred = W.Text(value=preferred, description="preferred", placeholder="e.g. ' apples'", layout=W.Layout(width="220px"))
        self.dispreferred = W.Text(value=dispreferred, description="dispreferred", layout=W.Layout(width="220px"))
        self.method = W.Dropdown(options=list(self.sets), description="vectors")
        self.layer = W.Dropdown(options=self._layer_options(first), description="layer")
        self.alpha = W.FloatSlider(value=alpha, min=-max_alpha, max=max_alpha, step=0.25, description="alpha",
                                   continuous_update=False)
        self.n_tokens = W.IntSlider(value=8, min=1, max=32, description="tokens", continuous_update=False)
        self.go = self.button("Run", primary=True)
        self.table = W.HTML()
        self.strip = W.HTML("", layout=W.Layout(display="" if self.fixed else "none"))
        self.fig = Figure()
        self.method.observe(lambda _: self._on_method(), names="value")
        self.rerun_on([self.layer, self.alpha, self.n_tokens])
        controls = [self.prompt, self.preferred, self.dispreferred, self.method, self.layer, self.alpha, self.n_tokens, self.go]
        super().__init__(controls, [self.strip, self.table, self.fig], export_path="steering.html")
        self.result: dict = {}
        self.run()

    @staticmethod
    def _layer_options(vec: SteeringVectors) -> list[tuple[str, object]]:
        opts = [(f"all ({', '.join(map(str, vec.layers))})", None)] if len(vec.layers) > 1 else []
        return opts + [(str(layer), layer) for layer in vec.layers]

    def _on_method(self) -> None:
        self.layer.options = self._layer_options(self.sets[self.method.value])
        self.run()

    def _gap(self, example) -> float | None:
        """log P(preferred) - log P(dispreferred) after the prompt (its images in place), or None without answers."""
        if example is None:
            return None
        if not self.fixed:
            return float(contrast_gaps(self.model, [encode(self.model, example)])[0])
        from interp.attribution.vision import visual_inputs
        from interp.steering.scoring import encode_parts

        enc, vin = encode_parts(self.model, example)
        with visual_inputs(self.model, vin):
            return float(contrast_gaps(self.model, [enc])[0])

    def _continue(self, prompt) -> str:
        """The greedy continuation of ``prompt`` (a string, or parts whose images the visual tokens carry)."""
        if not self.fixed:
            return greedy_continuation(self.model, prompt, self.n_tokens.value)
        from interp.attribution.vision import encode_prompt, visual_inputs

        vin = encode_prompt(self.model, prompt)
        ids = vin.ids.to(self.model.cfg.device)
        with torch.no_grad(), visual_inputs(self.model, vin):
            out = self.model.generate(ids, max_new_tokens=self.n_tokens.value, do_sample=False, verbose=False,
                                      stop_at_eos=False)
        return self.model.tokenizer.decode(out[0, ids.shape[1]:].tolist())

    def render(self) -> None:
        vec = self.sets[self.method.value]
        layers = None if self.layer.value is None else [self.layer.value]
        prompt = join_prompt(self.fixed, self.prompt.value)
        example = None
        if self.preferred.value.strip() and self.dispreferred.value.strip():
            kind = VisionContrast if self.fixed else ContrastExample  # a prompt with images, or text
            example = kind(tuple(prompt) if self.fixed else prompt, self.preferred.value, self.dispreferred.value)
        if self.fixed:
            self.strip.value = token_strip(self.model, prompt)
        self.progress(0, 3)
        plain = self._continue(prompt)
        gap0 = self._gap(example)
        self.progress(1, 3)
        with vec.steer(self.model, self.alpha.value, layers=layers):
            steered = self._continue(prompt)
            gap1 = self._gap(example)
        self.progress(2, 3)
        sweep = []
        if example is not None:
            top = max(abs(self.alpha.max), 1e-6)
            alphas = [top * f for f in (-1, -0.5, -0.25, 0, 0.25, 0.5, 1)]
            for a in alphas:
                with vec.steer(self.model, a, layers=layers):
                    sweep.append((a, self._gap(example)))
        self.progress(3, 3)
        shown = prompt if not self.fixed else "".join(p if isinstance(p, str) else "<image>" for p in prompt)
        self.result = dict(prompt=shown, method=self.method.value, layers=layers or vec.layers, alpha=self.alpha.value,
                           plain=plain, steered=steered, gap_plain=gap0, gap_steered=gap1, sweep=sweep)
        self._show()

    def _columns(self) -> list[str]:
        r = self.result
        return ["", "unsteered", f"steered (alpha {r['alpha']:g}, layers {r['layers']})"]

    def _show(self) -> None:
        r = self.result
        def fmt(g):
            return "—" if g is None else f"{g:+.3f}"
        def text(cont):
            return f"<code>{html.escape(r['prompt'])}<b>{html.escape(cont)}</b></code>"
        self.table.value = html_table(self._columns(), [["continuation", text(r["plain"]), text(r["steered"])],
                                                        ["log P(pref) − log P(dispref)", fmt(r["gap_plain"]), fmt(r["gap_steered"])]],
                                      escape=False)
        show_figure(self.fig, self.figure())

    def figure(self) -> go.Figure:
        """Log-prob gap versus alpha for the current prompt (empty when no answers are given)."""
        r = self.result
        fig = go.Figure()
        if r.get("sweep"):
            xs, ys = zip(*r["sweep"])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label(r["method"])))
            fig.add_vline(x=r["alpha"], line=dict(dash="dot", color="gray"))
            fig.add_hline(y=0, line=dict(color="lightgray"))
        fig.update_xaxes(title_text="alpha")
        fig.update_yaxes(title_text="log P(pref) − log P(dispref)")
        return base_layout(fig, "Log-prob gap vs alpha" if r.get("sweep") else "Give preferred/dispreferred answers to see the gap",
                           height=320)

    def add_to_report(self, report: Report) -> None:
        r = self.result
        title = "Steering playground"
        report.add_table(title, self._columns(), [
            ["continuation", r["prompt"] + r["plain"], r["prompt"] + r["steered"]],
            ["log-prob gap", "—" if r["gap_plain"] is None else r["gap_plain"], "—" if r["gap_steered"] is None else r["gap_steered"]],
        ])
        if r.get("sweep"):
            self.add_figures(report, title, [self.figure()])
