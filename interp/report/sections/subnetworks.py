"""Report section for a saved bigram subnetwork: ``interp report --subnetwork PATH``.

Added only when ``subnetwork=`` (a path to a file written by ``Subnetwork.save``) is given. Shows
the kept fraction by layer and component, per-token predictions of the full model / subnetwork / bigram
table on the prompt, and an evaluation (surprisal correlation, ablation losses) on held-out text: held-out
``stories`` documents for the bundled ``stories`` model, the prompt alone otherwise.
"""

from __future__ import annotations

from pathlib import Path

from interp.models import model_name
from interp.report.document import Report
from interp.subnetworks.evaluate import evaluate
from interp.subnetworks.predictions import token_predictions
from interp.subnetworks.subnetwork import Subnetwork
from interp.zoo.heldout import heldout_texts

TITLE = "Bigram subnetwork"


def add_to_report(report: Report, model, prompt: str, *, subnetwork: str | Path | None = None) -> None:
    """Add the subnetwork section when ``subnetwork`` names a saved subnetwork file; otherwise do nothing."""
    path = subnetwork
    if not path:
        return
    from interp.viz.subnetworks import ablation_figure, kept_fraction_figure, surprisal_scatter, token_predictions_figure

    sub = Subnetwork.load(path, model)
    cfg = sub.config
    report.add_text(
        TITLE,
        f"{sub!r} loaded from {path}. Target: {sub.target}; lam {cfg.get('lam')}, {cfg.get('steps_run')} steps "
        f"(stopped by {cfg.get('stopped')}). Embeddings, unembedding, norms and biases are always kept and not counted.",
    )
    report.add_figure(TITLE, kept_fraction_figure(sub))
    report.add_figure(TITLE, kept_fraction_figure(sub, share=True))
    report.add_figure(TITLE, token_predictions_figure(token_predictions(model, sub, prompt)))
    texts = heldout_texts(model_name(model)) or [prompt]
    where = f"{len(texts)} held-out stories documents" if len(texts) > 1 else "the prompt only"
    ev = evaluate(model, sub, texts)
    report.add_table(
        TITLE, ["variant", "loss (nats)", "CE to bigram (nats)", "r surprisal", "r (seen pairs)"], ev.rows(),
        caption=f"Evaluated on {where} ({ev.n_positions} predicted tokens). r: Pearson correlation of the variant's "
        "surprisal with the bigram table's. random = same number of kept weights per matrix, shuffled.",
    )
    report.add_figure(TITLE, surprisal_scatter(ev))
    report.add_figure(TITLE, ablation_figure(ev))
