"""``SubnetworkExplorer``: look at a bigram subnetwork of a model (kept weights, predictions, evaluation)."""

from __future__ import annotations

import html

import ipywidgets as W
import plotly.graph_objects as go

from interp.models import model_name
from interp.prompts import default_prompt
from interp.report import Report
from interp.subnetworks.evaluate import evaluate
from interp.subnetworks.predictions import token_predictions
from interp.subnetworks.subnetwork import Subnetwork
from interp.viz.subnetworks import ablation_figure, kept_fraction_figure, surprisal_scatter, token_predictions_figure
from interp.zoo.heldout import heldout_texts
from widgets.base import Explorer

__all__ = ["SubnetworkExplorer"]


class SubnetworkExplorer(Explorer):
    """Kept fraction by layer/component, per-token predictions (full / subnetwork / bigram) on a prompt, and
    an evaluation on held-out text (surprisal correlation with the bigram table, ablation losses).

    ``subnetwork``: a ``Subnetwork`` or a path to one. ``texts``: held-out texts for the evaluation (default:
    held-out ``stories`` documents for the ``stories`` model, else the prompt).
    """

    title = "Bigram subnetwork explorer"

    def __init__(self, model, subnetwork: Subnetwork | str, prompt: str | None = None, texts: list[str] | None = None):
        self.model = model
        prompt = prompt if prompt is not None else default_prompt(model)  # toy or real model (interp.prompts)
        self.sub = subnetwork if isinstance(subnetwork, Subnetwork) else Subnetwork.load(subnetwork, model)
        self.sub.check_model(model)
        self.texts = texts
        self.prompt = W.Text(value=prompt, description="prompt", layout=W.Layout(width="520px"))
        self.share = W.ToggleButtons(options=[("kept fraction", False), ("share of kept", True)], value=False)
        self.run_button = W.Button(description="Predict", icon="play")
        self.eval_button = W.Button(description="Evaluate", icon="check", tooltip="evaluate on held-out text (slower)")
        self.info = W.HTML(f"<code>{html.escape(repr(self.sub))}</code>")
        self.kept_fig = go.FigureWidget(kept_fraction_figure(self.sub))
        self.pred_fig = go.FigureWidget()
        self.scatter_fig = go.FigureWidget()
        self.table = W.HTML("")
        self.ev = None
        self.preds = None
        self.run_button.on_click(lambda _: self.run())
        self.eval_button.on_click(lambda _: self.run(self.evaluate))
        self.share.observe(lambda _: self.run(self._update_kept), names="value")
        super().__init__([self.prompt, self.run_button, self.eval_button, self.share],
                         [self.info, self.kept_fig, self.pred_fig, self.table, self.scatter_fig],
                         export_path="subnetwork.html")
        self.run()

    @staticmethod
    def _replace(target: go.FigureWidget, fig: go.Figure) -> None:
        with target.batch_update():
            target.data = []
            target.add_traces(list(fig.data))
            target.layout = fig.layout

    def _update_kept(self) -> None:
        self._replace(self.kept_fig, kept_fraction_figure(self.sub, share=self.share.value))

    def render(self) -> None:
        """Per-token predictions of the full model, the subnetwork alone and the bigram table on the prompt."""
        self.progress(0, 1)
        self.preds = token_predictions(self.model, self.sub, self.prompt.value)
        self._replace(self.pred_fig, token_predictions_figure(self.preds))
        self.progress(1, 1)

    def evaluate(self) -> None:
        """Evaluate on held-out text: table of loss / CE / r per variant and the surprisal scatter."""
        texts = self.texts or heldout_texts(model_name(self.model)) or [self.prompt.value]
        self.progress(0, 1)
        self.ev = evaluate(self.model, self.sub, texts)
        head = "".join(f"<th>{h}</th>" for h in ["variant", "loss", "CE to bigram", "r", "r (seen pairs)"])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in self.ev.rows())
        self.table.value = f"<table><tr>{head}</tr>{body}</table><small>{self.ev.n_positions} predicted tokens</small>"
        self._replace(self.scatter_fig, surprisal_scatter(self.ev))
        self.progress(1, 1)

    def add_to_report(self, report: Report) -> None:
        report.add_text("Subnetwork", repr(self.sub))
        report.add_figure("Subnetwork", kept_fraction_figure(self.sub, share=self.share.value))
        if self.preds is not None:
            report.add_figure("Subnetwork", token_predictions_figure(self.preds))
        if self.ev is not None:
            report.add_table("Subnetwork", ["variant", "loss", "CE to bigram", "r", "r (seen pairs)"], self.ev.rows())
            report.add_figure("Subnetwork", surprisal_scatter(self.ev))
            report.add_figure("Subnetwork", ablation_figure(self.ev))
