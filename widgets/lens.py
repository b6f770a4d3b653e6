"""``LensExplorer``: logit / tuned / latent lens grid of a prompt; click a cell for its top-k and LatentLens neighbours."""

from __future__ import annotations

import html

import ipywidgets as W

from interp.errors import InterpError
from interp.lens.bundled import bundled_tuned_lens, default_index
from interp.lens.latent import latent_lens
from interp.lens.logit import STATISTICS, logit_lens
from interp.report import Report
from interp.viz.common import visible
from widgets.base import Explorer, Figure, html_table, show_figure

_STAT_LABELS = {"final_prob": "p(final top-1)", "entropy": "entropy", "kl": "KL(final‖layer)", "target_rank": "target rank",
                "target_prob": "target probability"}


class LensExplorer(Explorer):
    """Lens grid of a prompt (default: ``interp.prompts.default_prompt``) with controls: prompt, lens (logit / tuned /
    latent), statistic, target token and layer stride (the last layer is always shown). Clicking a cell (or calling
    ``select(row, pos)``) shows that cell's top-k tokens and its LatentLens neighbours.

    ``tuned``: a ``TunedLens`` (default: the shipped one when it fits the model). ``index``: a ``LatentIndex``
    (default: for ``stories`` a small index is built on first use; other models need one passed in).
    """

    title = "Lens explorer"

    def __init__(self, model, prompt: str | None = None, *, tuned=None, index=None, target: str = "", top_k: int = 5,
                 export_path: str = "lens.html"):
        self.model, self.top_k = model, top_k
        self.tuned = tuned if tuned is not None else bundled_tuned_lens(model)
        self._index, self._index_tried = index, index is not None
        self.prompt = self.prompt_box(model, prompt)
        self.lens = W.Dropdown(options=["logit", "tuned", "latent"], value="logit", description="lens", layout=W.Layout(width="170px"))
        self.stat = W.Dropdown(options=[(v, k) for k, v in _STAT_LABELS.items()], value="final_prob", description="colour",
                               layout=W.Layout(width="260px"))
        self.target = W.Text(value=target, description="target", placeholder="word (optional)", layout=W.Layout(width="220px"))
        n_rows = model.cfg.n_layers + 1
        self.stride = W.IntSlider(value=1, min=1, max=max(1, n_rows - 1), description="stride", layout=W.Layout(width="260px"))
        self.go_button = self.button("Run", primary=True)
        self.fig = Figure()
        self.detail = W.HTML("<i>click a cell for its top-k tokens and LatentLens neighbours</i>")
        self.note = W.HTML("")
        controls = [self.prompt, self.lens, self.stat, self.target, self.stride, self.go_button]
        super().__init__(controls, [self.note, self.fig, self.detail], export_path=export_path)
        self.result = self.latent = None
        self.rerun_on([self.lens, self.stat, self.stride])
        self.run()

    # ---- computing ---------------------------------------------------------------------------
    def index(self):
        """The LatentLens index in use (built on first use for ``stories``), or None."""
        if not self._index_tried:
            self._index_tried = True
            self.status.value = "building LatentLens index…"
            self._index = default_index(self.model)
        return self._index

    def render(self) -> None:
        from interp.viz.lens import latent_heatmap, lens_heatmap

        target = self.target.value.strip() or None
        lens = self.lens.value
        if lens == "tuned" and self.tuned is None:
            raise InterpError("no tuned lens for this model: pass tuned=TunedLens.train(model, texts) to LensExplorer")
        if self.stat.value.startswith("target") and target is None:
            raise InterpError("the target statistics need a target word: type one in the target box")
        self.progress(1, 3)
        self.result = logit_lens(self.model, self.prompt.value, target=target, top_k=self.top_k,
                                 lens=self.tuned if lens == "tuned" else None)
        self.progress(2, 3)
        if lens == "latent":
            index = self.index()
            if index is None:
                raise InterpError("no LatentLens index for this model: pass index=LatentIndex.build(model, texts) to LensExplorer")
            self.latent = latent_lens(self.model, self.prompt.value, index, k=self.top_k)
            fig = latent_heatmap(self.latent, stride=self.stride.value)
        else:
            self.latent = None
            fig = lens_heatmap(self.result, self.stat.value, stride=self.stride.value)
        self.note.value = html.escape(self.result.target_note)
        show_figure(self.fig, fig)
        self.fig.data[0].on_click(self._clicked)
        self.progress(3, 3)

    def _clicked(self, trace, points, state) -> None:
        if not points.xs:
            return
        x, y = points.xs[0], points.ys[0]
        pos = list(trace.x).index(x)
        row = self.result.layers.index(y) if y in self.result.layers else self.latent.labels.index(y)
        self.run(lambda: self.select(row, pos))

    def select(self, row: int, pos: int) -> str:
        """Show the top-k of lens row ``row`` (index into the result's layers) at ``pos`` and its LatentLens
        neighbours; returns the HTML shown."""
        r = self.result
        label = r.layers[row]
        parts = [f"<b>{html.escape(r.lens)} lens, {html.escape(label)}, position {pos} ({html.escape(visible(r.tokens[pos]))})</b>",
                 html_table(["#", "token", "probability"], [[i + 1, visible(t), f"{p:.4f}"] for i, (t, p) in
                                                            enumerate(zip(r.top_tokens[row][pos], r.top_probs[row, pos].tolist()))])]
        if label.endswith("_mid"):
            parts.append("<i>LatentLens reads block inputs and the final output only.</i>")
        else:
            layer = self.model.cfg.n_layers if label == "final_post" else int(label.split("_")[0])
            index = self.index()
            if index is None:
                parts.append("<i>no LatentLens index for this model</i>")
            else:
                ll = latent_lens(self.model, self.prompt.value, index, layer=layer, k=self.top_k)
                rows = [[i + 1, visible(t), f"{s:.3f}", int(sl), snip] for i, (t, s, sl, snip) in
                        enumerate(zip(ll.neighbours[0][pos], ll.sims[0, pos].tolist(), ll.source_layers[0, pos].tolist(),
                                      ll.snippets[0][pos]))]
                parts += ["<b>LatentLens neighbours</b>", html_table(["#", "token", "cosine", "stored layer", "context"], rows)]
        self.detail.value = "<br>".join(parts)
        return self.detail.value

    # ---- export ------------------------------------------------------------------------------
    def add_to_report(self, report: Report) -> None:
        """Add the current grid (and the selected cell's tables as text) to ``report``."""
        if self.result is None:
            raise InterpError("nothing to export yet: run the explorer first")
        title = f"Lens: {self.prompt.value}"
        self.add_figures(report, title, [self.fig], caption=f"{self.lens.value} lens, colour {_STAT_LABELS[self.stat.value]}")
        r, last = self.result, len(self.result.layers) - 1
        report.add_table(title, ["stream", "top-1", "p", STATISTICS["kl"][1]],
                         [[name, visible(r.top_tokens[i][-1][0]), float(r.top_probs[i, -1, 0]), float(r.kl[i, -1])]
                          for i, name in enumerate(r.layers)],
                         caption=f"Last position ({visible(r.tokens[-1])}); the row {r.layers[last]!r} is the model's own prediction.")
