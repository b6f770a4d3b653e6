"""``SubnetworkExplorer``: look at a bigram subnetwork of a model (kept weights, predictions, evaluation)."""

from __future__ import annotations

import html

import ipywidgets as W

from interp.models import model_name
from interp.report import Report
from interp.subnetworks.evaluate import evaluate
from interp.subnetworks.predictions import token_predictions
from interp.subnetworks.subnetwork import Subnetwork
from interp.viz.subnetworks import ablation_figure, kept_fraction_figure, surprisal_scatter, token_predictions_figure
from interp.zoo.heldout import heldout_texts
from widgets.base import Explorer, Figure, html_table, show_figure

__all__ = ["SubnetworkExplorer"]

_EVAL_COLUMNS = ["variant", "loss", "CE to bigram", "r", "r (seen pairs)"]


class SubnetworkExplorer(Explorer):
    """Kept fraction by layer/component, per-token predictions (full / subnetwork / bigram) on a prompt, and
    an evaluation on held-out text (surprisal correlation with the bigram table, ablation losses).

    ``subnetwork``: a ``Subnetwork`` or a path to one. ``texts``: held-out texts for the evaluation (default:
    held-out ``stories`` documents for the ``stories`` model, else the prompt).
    """

    title = "Bigram subnetwork explorer"

    def __init__(self, model, subnetwork: Subnetwork | str, prompt: str | None = None, texts: list[str] | None = None):
        self.model = model
        self.sub = subnetwork if isinstance(subnetwork, Subnetwork) else Subnetwork.load(subnetwork, model)
        self.sub.check_model(model)
        self.texts = texts
        self.prompt = self.prompt_box(model, prompt, width="520px")
        self.share = W.ToggleButtons(options=[("kept fraction", False), ("share of kept", True)], value=False)
        self.run_button = self.button("Predict")
        self.eval_button = self.button("Evaluate", self.evaluate, icon="check", tooltip="evaluate on held-out text (slower)")
        self.info = W.HTML(f"<code>{html.escape(repr(self.sub))}</code>")
        self.kept_fig = Figure(kept_fraction_figure(self.sub))
        self.pred_fig = Figure()
        self.scatter_fig = Figure()
        self.table = W.HTML("")
        self.ev = None
        self.preds = None
        self.rerun_on([self.share], self._update_kept)
        super().__init__([self.prompt, self.run_button, self.eval_button, self.share],
                         [self.info, self.kept_fig, self.pred_fig, self.table, self.scatter_fig],
                         export_path="subnetwork.html")
        self.run()

    def _update_kept(self) -> None:
        show_figure(self.kept_fig, kept_fraction_figure(self.sub, share=self.share.value))

    def render(self) -> None:
        """Per-token predictions of the full model, the subnetwork alone and the bigram table on the prompt."""
        self.progress(0, 1)
        self.preds = token_predictions(self.model, self.sub, self.prompt.value)
        show_figure(self.pred_fig, token_predictions_figure(self.preds))
        self.progress(1, 1)

    def evaluate(self) -> None:
        """Evaluate on held-out text: table of loss / CE / r per variant and the surprisal scatter."""
        texts = self.texts or heldout_texts(model_name(self.model)) or [self.prompt.value]
        self.progress(0, 1)
        self.ev = evaluate(self.model, self.sub, texts)
        self.table.value = html_table(_EVAL_COLUMNS, self.ev.rows()) + f"<small>{self.ev.n_positions} predicted tokens</small>"
        show_figure(self.scatter_fig, surprisal_scatter(self.ev))
        self.progress(1, 1)

    def add_to_report(self, report: Report) -> None:
        title = "Subnetwork"
        report.add_text(title, repr(self.sub))
        self.add_figures(report, title, [kept_fraction_figure(self.sub, share=self.share.value)]
                         + ([token_predictions_figure(self.preds)] if self.preds is not None else []))
        if self.ev is not None:
            report.add_table(title, _EVAL_COLUMNS, self.ev.rows())
            self.add_figures(report, title, [surprisal_scatter(self.ev), ablation_figure(self.ev)])
