"""``VisualTokenExplorer``: the image of a VLM prompt with its patch grid; pick a lens and a layer, click a patch to
see its top words at every layer."""

from __future__ import annotations

import html

import ipywidgets as W

from interp.errors import InterpError
from interp.lens.visual import visual_lens
from interp.lens.visual_truth import names_attribute, patch_hits, rate, shown
from interp.models.vision import has_images, is_vlm, to_image
from interp.report import Report
from interp.viz.common import visible
from interp.viz.vision import patch_figure, patch_rows
from interp.zoo.scenes import Scene
from widgets.base import Explorer, Figure, html_table, show_figure

_COLOURS = {"score": "top-1 score", "truth": "planted truth (hit / miss)"}


def _parts(prompt_or_image) -> tuple[list, list[Scene] | None]:
    """(prompt parts, the scenes they show or None) of what the explorer was given."""
    if isinstance(prompt_or_image, Scene):
        return [prompt_or_image.pixels], [prompt_or_image]
    if isinstance(prompt_or_image, (list, tuple)):
        parts = [p.pixels if isinstance(p, Scene) else p for p in prompt_or_image]
        scenes = [p for p in prompt_or_image if isinstance(p, Scene)]
        n_img = sum(1 for p in parts if has_images([p]))
        return parts, (scenes if scenes and len(scenes) == n_img else None)
    return [prompt_or_image], None


class VisualTokenExplorer(Explorer):
    """The visual tokens of a vision-language model, read by a lens: the image with its patch grid, each patch coloured
    by its top-1 score (or, when the planted truth is known, by whether a top word names what it shows), hover for its
    top words at the chosen layer; click a patch (or call ``select(row, col)``; or tick "follow hover" and hover it) for
    its top words at every layer.

    ``prompt_or_image``: a ``interp.zoo.scenes.Scene`` (its truth is then known), an image (PIL, array, ``Path``) or a
    prompt's list of text and image parts. ``index``: a ``LatentIndex`` of the model's text side, which adds the
    LatentLens choice. ``truth``: the scenes the prompt's images show (one per image), when not given as scenes.
    """

    title = "Visual token explorer"

    def __init__(self, model, prompt_or_image, index=None, *, truth: list[Scene] | Scene | None = None, k: int = 5,
                 layer: int | None = None, export_path: str = "visual_tokens.html"):
        if not is_vlm(model):
            raise InterpError("VisualTokenExplorer needs a vision-language model (e.g. load_model('scenes-vlm')); "
                              "this one is text-only")
        self.model, self.index, self.k = model, index, k
        self.parts, scenes = _parts(prompt_or_image)
        if not has_images(self.parts):
            raise InterpError("VisualTokenExplorer: the prompt holds no image; give a PIL image, an array, a Path or a Scene")
        self.images = [to_image(p, where=f"prompt part {i}") for i, p in enumerate(self.parts) if has_images([p])]
        self.truth = [truth] if isinstance(truth, Scene) else (list(truth) if truth is not None else scenes)
        if self.truth is not None and len(self.truth) != len(self.images):
            raise InterpError(f"truth: give one scene per image of the prompt ({len(self.images)}), got {len(self.truth)}")
        n = model.cfg.n_layers
        lenses = ["logit", "embedding"] + (["latent"] if index is not None else [])
        self.lens = W.Dropdown(options=lenses, value="latent" if index is not None else "logit", description="lens",
                               layout=W.Layout(width="190px"))
        self.layer = W.IntSlider(value=n // 2 if layer is None else layer, min=0, max=n, description="layer",
                                 layout=W.Layout(width="300px"))
        colours = [(v, key) for key, v in _COLOURS.items() if key == "score" or self.truth is not None]
        self.colour = W.Dropdown(options=colours, value="truth" if self.truth is not None else "score", description="colour",
                                 layout=W.Layout(width="300px"))
        self.hover = W.Checkbox(value=False, description="follow hover", indent=False, layout=W.Layout(width="120px"))
        self.image = W.Dropdown(options=list(range(len(self.images))), value=0, description="image",
                                layout=W.Layout(width="150px", display="" if len(self.images) > 1 else "none"))
        self.fig = Figure()
        self.note = W.HTML("")
        self.detail = W.HTML("<i>click a patch for its top words at every layer</i>")
        controls = [self.lens, self.layer, self.colour, self.hover, self.image]
        super().__init__(controls, [self.note, self.fig, self.detail], export_path=export_path)
        self.results: dict = {}
        self.selected: tuple[int, int] | None = None
        self.rerun_on([self.lens])
        self.rerun_on([self.layer, self.colour, self.image], self.draw)
        self.run()

    # ---- computing ---------------------------------------------------------------------------
    @property
    def result(self):
        """The ``VisualLensResult`` of the chosen lens (all layers), or None before it was computed."""
        return self.results.get(self.lens.value)

    def render(self) -> None:
        """Read the visual tokens with the chosen lens (once per lens: every layer at once), then draw."""
        lens = self.lens.value
        if lens not in self.results:
            self.progress(1, 2)
            self.results[lens] = visual_lens(self.model, self.parts, lens=lens, index=self.index, k=self.k)
        self.draw()

    def draw(self) -> None:
        """Redraw the figure (and the selected patch's table) for the chosen layer, colour and image."""
        r = self.result
        if r is None:
            return self.render()
        img = self.image.value
        verdict = keep = shows = None
        if self.truth is not None:
            shows = [" ".join(self.truth[i].cells[row][col] or ("empty",)) for i, row, col in r.patches.tolist()]
            if self.colour.value == "truth":
                verdict, keep = patch_hits(r, self.truth), shown(r, self.truth)
                p, se = rate(verdict[r.layers.index(self.layer.value)], keep)
                self.note.value = (f"{html.escape(r.lens)} lens, layer {self.layer.value}: {p:.0%} ± {se:.0%} of the object patches "
                                   f"have a top-{self.k} word naming their colour or shape (green); red: none does")
        if verdict is None:
            self.note.value = f"{html.escape(r.lens)} lens, layer {self.layer.value}: colour = the top-1 word's score"
        fig = patch_figure(r, self.images[img], layer=self.layer.value, verdict=verdict, keep=keep, shows=shows, image_index=img)
        show_figure(self.fig, fig)
        self.fig.data[1].on_click(self._clicked)
        self.fig.data[1].on_hover(self._hovered)
        self.progress(2, 2)
        if self.selected is not None:
            self.select(*self.selected)

    @staticmethod
    def _patch_at(trace, points) -> tuple[int, int] | None:
        """(row, col) of the patch under a click or hover event's point, or None without a point."""
        if not points.xs:
            return None
        xs, ys = list(trace.x), list(trace.y)  # patch centres, in pixels
        col = min(range(len(xs)), key=lambda i: abs(xs[i] - points.xs[0]))
        row = min(range(len(ys)), key=lambda i: abs(ys[i] - points.ys[0]))
        return row, col

    def _clicked(self, trace, points, state) -> None:
        at = self._patch_at(trace, points)
        if at is not None:
            self.run(lambda: self.select(*at))

    def _hovered(self, trace, points, state) -> None:
        at = self._patch_at(trace, points) if self.hover.value and self.result is not None else None
        if at is not None and at != self.selected:
            self.select(*at)  # no run(): a hover must not disable the controls

    def select(self, row: int, col: int) -> str:
        """Show the top words of patch (``row``, ``col``) of the chosen image at every layer (the chosen layer in bold,
        words naming what the patch shows marked ✓); returns the HTML shown."""
        r = self.result
        if r is None:
            raise InterpError("nothing computed yet: run the explorer first")
        img = self.image.value
        cell = self.truth[img].cells[row][col] if self.truth is not None else None
        mark = (lambda w: names_attribute(w, cell)) if cell else None
        rows = patch_rows(r, row, col, img, mark=mark)
        self.selected = (row, col)
        body = [[f"<b>{html.escape(x)}</b>" if rw[0] == str(self.layer.value) else html.escape(x) for x in rw] for rw in rows]
        shows = f", shows {html.escape(' '.join(cell))}" if cell else (", empty" if self.truth is not None else "")
        head = f"<b>{html.escape(r.lens)} lens, patch (row {row}, col {col}) of image {img}{shows}: top words by layer</b>"
        self.detail.value = head + html_table(["layer"] + [f"#{i + 1}" for i in range(len(rows[0]) - 1)], body, escape=False)
        return self.detail.value

    # ---- export ------------------------------------------------------------------------------
    def add_to_report(self, report: Report) -> None:
        """Add the current figure, and the selected patch's words by layer, to ``report``."""
        r = self.result
        if r is None:
            raise InterpError("nothing to export yet: run the explorer first")
        title = f"Visual tokens: {r.lens} lens"
        self.add_figures(report, title, [self.fig], caption=f"Layer {self.layer.value}; {_COLOURS[self.colour.value]}.")
        if self.selected is not None:
            row, col = self.selected
            rows = patch_rows(r, row, col, self.image.value)
            report.add_table(title, ["layer"] + [f"#{i + 1}" for i in range(len(rows[0]) - 1)], rows,
                             caption=f"Top words of patch (row {row}, col {col}) at every layer ({visible(r.lens)} lens).")
