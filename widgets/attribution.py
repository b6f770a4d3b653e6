"""``AttributionExplorer``: attribute a prompt's next token(s) with any method and see the coloured tokens."""

from __future__ import annotations

import html

import ipywidgets as W

from interp.attribution import REAGENT_FAST, SETTINGS, attribute, method_names
from interp.attribution.ig import BASELINES, MAX_POINTS
from interp.attribution.reduction import REDUCTIONS
from interp.attribution.samplers import SAMPLERS
from interp.attribution.settings import ReagentSettings
from interp.models.vision import has_images
from interp.prompts import is_toy
from interp.report import Report
from interp.report.sections.attribution import add_attribution
from widgets.base import Explorer, Figure, show_figure
from widgets.image_prompt import join_prompt, split_prompt

__all__ = ["AttributionExplorer"]

_PRESET_FIELDS = ("num_probes", "min_steps", "max_steps")  # what a ReAGent preset sets in the view


class AttributionExplorer(Explorer):
    """Controls: prompt, method, target (text; empty = the greedy next token) or generate N tokens, and the
    method options (seed; ReAGent preset, probes, update steps and sampler; IG max points and baseline; the per-token
    reduction of the gradient methods and IG: signed sum, L2 norm, sum of |.|). Shows the sources of
    the chosen target as coloured tokens (hover = score) and, for several targets, the [target, source] matrix.
    Run computes in the background: the bar shows ReAGent's stopped probes or IG's points (both IGs), and Cancel stops it
    (the view keeps the previous result). ``result`` holds the last ``TokenAttribution``.

    ReAGent's preset fills probes and update steps: "fast" (``REAGENT_FAST``: 2 probes, ~1.7 s a 20-token prompt on
    SmolLM2 on one CPU thread, seed-to-seed Spearman 0.44) is chosen first on a real LM, "stable" (the defaults:
    8 probes, ~9 s, Spearman 0.70) on a toy model; editing a number shows "custom".

    Images: on a vision-language model ``prompt`` may be a list of text and image parts (``interp.models.vision``). The
    parts up to the last image stay fixed and the text box holds the text after it (empty: attribute the token that
    follows the image); visual tokens show as ``<img R,C>`` in the token strip and, beside it, the image with each
    patch coloured by its visual token's score (``interp.viz.attribution_vision.patch_heatmap``; an "image" choice
    when the prompt holds several). ``truth``: (row, col) of a patch known to decide the answer, outlined on the first
    image.
    """

    title = "Token attribution"

    def __init__(self, model, prompt: str | list | None = None, *, method: str | None = None,
                 truth: tuple[int, int] | None = None, export_path: str = "attribution.html", run: bool = True):
        self.model = model
        self.fixed, prompt = split_prompt(model, prompt, "AttributionExplorer")
        self.images, self.truth = [p for p in self.fixed if has_images([p])], truth
        self._setting = False  # True while a preset fills the numbers (not a user's edit)
        # first view: ReAGent on a toy model; occlusion (one batched pass, under a second) on a real LM, where ReAGent
        # and IG take ~10 s a prompt on a CPU (Run starts them in the background, with Cancel)
        method = method or ("reagent" if is_toy(model) else "occlusion")
        self.prompt = self.prompt_box(model, prompt)
        self.method = W.Dropdown(options=method_names(), value=method, description="method", layout=W.Layout(width="280px"))
        self.target = W.Text(value="", description="target", placeholder="empty: greedy next token", layout=W.Layout(width="260px"))
        self.generate = W.BoundedIntText(value=0, min=0, max=32, description="generate", layout=W.Layout(width="160px"))
        self.seed = W.IntText(value=0, description="seed", layout=W.Layout(width="140px"))
        self.presets = {name: {k: p[k] for k in _PRESET_FIELDS} for name, p in
                        (("fast", REAGENT_FAST), ("stable", ReagentSettings()))}
        first = self.presets["stable" if is_toy(model) else "fast"]
        self.preset = W.ToggleButtons(options=["fast", "stable", "custom"], value="stable" if is_toy(model) else "fast",
                                      description="ReAGent", style={"button_width": "64px"})
        self.probes = W.BoundedIntText(value=first["num_probes"], min=1, max=256, description="probes",
                                       layout=W.Layout(width="160px"))
        self.min_steps = W.BoundedIntText(value=first["min_steps"], min=0, max=100_000, description="min steps",
                                          layout=W.Layout(width="180px"))
        self.max_steps = W.BoundedIntText(value=first["max_steps"], min=1, max=100_000,
                                          description="max steps", layout=W.Layout(width="180px"))
        self.preset.observe(lambda _: self._apply_preset(), names="value")
        for w in (self.probes, self.min_steps, self.max_steps):
            w.observe(lambda _: self._mark_custom(), names="value")
        self.sampler = W.Dropdown(options=[s for s in SAMPLERS if s != "mlm"], value="uniform", description="sampler",
                                  layout=W.Layout(width="200px"))
        # the adaptive IG rule adds points until the completeness error is below 1%; this caps them (the IG methods'
        # ``max_points``; ReAGent's update steps are ``max_steps`` above, a different thing)
        self.max_points = W.BoundedIntText(value=MAX_POINTS, min=21, max=5000, description="IG max points",
                                           layout=W.Layout(width="190px"))
        self.reduction = W.Dropdown(options=list(REDUCTIONS), value="sum", description="per token",
                                    layout=W.Layout(width="200px"))
        self.baseline = W.Dropdown(options=list(BASELINES), value="auto", description="baseline", layout=W.Layout(width="220px"))
        self.shown = W.Dropdown(options=[("last", -1)], value=-1, description="show target", layout=W.Layout(width="240px"))
        self.go_button = self.button("Run", primary=True, background=True)
        self.shown.observe(lambda _: self._draw(), names="value")
        self.method.observe(lambda _: self._toggle(), names="value")
        self.tokens_fig = Figure()
        self.matrix_fig = Figure()
        self.patch_fig = Figure()
        self.info = W.HTML("")
        self.image = W.Dropdown(options=list(range(len(self.images))), value=0 if self.images else None, description="image",
                                layout=W.Layout(width="150px", display="" if len(self.images) > 1 else "none"))
        self.image.observe(lambda _: self._draw(), names="value")
        controls = [self.prompt, self.method, self.target, self.generate, self.seed, self.preset, self.probes, self.min_steps,
                    self.max_steps, self.sampler, self.max_points, self.baseline, self.reduction, self.shown, self.image,
                    self.go_button]
        strip = W.HBox([self.tokens_fig, self.patch_fig], layout=W.Layout(flex_flow="row wrap")) if self.images else self.tokens_fig
        super().__init__(controls, [self.info, strip, self.matrix_fig], export_path=export_path)
        self.result = None
        self._toggle()
        if run:
            self.run()

    def _apply_preset(self) -> None:
        values = self.presets.get(self.preset.value)
        if values is None:  # "custom": keep the numbers as they are
            return
        self._setting = True
        try:
            self.probes.value, self.min_steps.value, self.max_steps.value = (
                values["num_probes"], values["min_steps"], values["max_steps"])
        finally:
            self._setting = False

    def _mark_custom(self) -> None:
        if self._setting:
            return
        now = {"num_probes": self.probes.value, "min_steps": self.min_steps.value, "max_steps": self.max_steps.value}
        match = [name for name, values in self.presets.items() if values == now]
        self.preset.value = match[0] if match else "custom"

    def _fields(self) -> dict:
        """{setting: default} of the chosen method's settings class (``interp.attribution.settings``)."""
        return SETTINGS[self.method.value].defaults()

    def _toggle(self) -> None:
        """Show the controls of the chosen method's settings; its defaults fill the IG points box and the reduction."""
        fields = self._fields()
        if "max_points" in fields:
            self.max_points.value = fields["max_points"]
        if "reduction" in fields:
            self.reduction.value = fields["reduction"]
        reagent = self.method.value == "reagent"
        for w in (self.preset, self.probes, self.min_steps, self.max_steps):
            w.layout.display = "" if reagent else "none"
        for w, name in ((self.sampler, "sampler"), (self.max_points, "max_points"), (self.baseline, "baseline"),
                        (self.reduction, "reduction"), (self.seed, "seed")):
            w.layout.display = "" if name in fields else "none"

    def options(self) -> dict:
        """The settings the current controls give the chosen method (fields of its settings class)."""
        fields = self._fields()
        values = {"seed": self.seed.value, "num_probes": self.probes.value, "min_steps": self.min_steps.value,
                  "max_steps": self.max_steps.value, "sampler": self.sampler.value, "max_points": self.max_points.value,
                  "reduction": self.reduction.value, "baseline": self.baseline.value}
        if self.method.value != "reagent":  # an IG method's max_steps is the deprecated name of max_points
            values.pop("max_steps")
        return {k: v for k, v in values.items() if k in fields}

    def prompt_value(self) -> str | list:
        """The prompt attributed: the text box, after the fixed image parts when the prompt holds images."""
        return join_prompt(self.fixed, self.prompt.value)

    def render(self) -> None:
        target = self.target.value or None
        generate = self.generate.value or None
        if generate:
            target = None
        self.result = attribute(self.model, self.prompt_value(), target, method=self.method.value, generate=generate,
                                progress=self.progress, **self.options())
        r = self.result
        opts = [(f"{p}: {t!r}", i) for i, (p, t) in enumerate(zip(r.target_positions, r.target_tokens))]
        self.shown.unobserve_all("value")
        self.shown.options, self.shown.value = opts, len(opts) - 1
        self.shown.observe(lambda _: self._draw(), names="value")
        self._draw()

    def _draw(self) -> None:
        from interp.viz.attribution import matrix_figure, token_figure

        r = self.result
        if r is None:
            return
        i = self.shown.value if isinstance(self.shown.value, int) and self.shown.value >= 0 else r.n_targets - 1
        show_figure(self.tokens_fig, token_figure(r, i))
        if r.n_targets > 1:
            show_figure(self.matrix_fig, matrix_figure(r))
        else:
            self.matrix_fig.data = []
        self.matrix_fig.layout.height = None if r.n_targets > 1 else 10
        if self.images:
            show_figure(self.patch_fig, self.patch_figure(i))
        notes = []
        if r.completeness_error is not None:
            notes.append(f"IG completeness error {float(r.completeness_error[i]):.2%} (baseline {r.info.get('baseline')})")
        if "converged" in r.info:
            notes.append(f"ReAGent: {r.info['forward_calls']} model calls ({r.info.get('forward', 'hf')} forward), "
                         f"steps {r.info['steps']}, converged {r.info['converged']}")
        notes += r.info.get("notes", [])
        self.info.value = "<br>".join(html.escape(n) for n in notes)

    def patch_figure(self, target: int = -1):
        """The image heatmap of the last result for ``target``: the chosen image, each patch coloured by its score."""
        from interp.viz.attribution_vision import patch_heatmap

        k = self.image.value or 0
        return patch_heatmap(self.result, self.images[k], target=target, image_index=k,
                             truth=self.truth if k == 0 else None)

    def add_to_report(self, report: Report) -> None:
        if self.result is not None:
            title = f"Token attribution ({self.result.method})"
            add_attribution(report, self.result, title)
            if self.images:
                i = self.shown.value if isinstance(self.shown.value, int) and self.shown.value >= 0 else -1
                report.add_figure(title, self.patch_figure(i),
                                  caption="Each patch of the image coloured by its visual token's score (top 3 numbered).")

