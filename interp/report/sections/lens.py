"""The lens section of ``interp report``: logit lens grid, tuned lens (when one fits), LatentLens neighbours."""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.lens.bundled import bundled_tuned_lens, default_index
from interp.lens.latent import LatentIndex, default_layers, latent_lens
from interp.lens.latent.quality import WEAK
from interp.lens.logit import logit_lens
from interp.lens.tuned import TunedLens

TITLE = "Lenses"
KL_CAPTION = ("KL(final || layer) in nats. When one row is far above the rest (the embedding row of a real model), the colour "
              "scale ends at the 90th percentile of the cells (said in the colour bar); hover shows every value.")


def _tuned(model, tuned_lens):
    if isinstance(tuned_lens, TunedLens):
        return tuned_lens, ""
    if tuned_lens:
        return TunedLens.load(tuned_lens, model), ""
    lens = bundled_tuned_lens(model)
    return lens, "" if lens is not None else "No tuned lens fits this model (train one: python -m interp.lens train-tuned <model>)."


def _index(model, latent_index):
    if isinstance(latent_index, LatentIndex):
        return latent_index, ""
    if latent_index:
        return LatentIndex.load(latent_index), ""
    index = default_index(model)  # bundled models only (stories, the VLMs): see interp.lens.bundled.default_index
    if index is not None:
        return index, "built from 150 training documents"
    return None, "No LatentLens index for this model: pass latent_index=<folder> (build one with LatentIndex.build)."


STEPS = ("logit lens", "logit lens of the target", "tuned lens", "LatentLens")
"""The steps the section reports to its ``progress`` callback, in order."""


@torch.no_grad()
def add_to_report(report, model, prompt: str, *, lens_target: str | None = None, tuned_lens=None, latent_index=None,
                  stride: int = 1, progress: Callable[[str, int, int], None] | None = None,
                  next_ids: list[int] | None = None) -> None:
    """Add the lens section for ``prompt``: logit-lens heat-maps (final top-1 probability, KL), the target
    probability by layer (target = ``lens_target`` or the model's top next token), the tuned lens when one
    fits the model, and LatentLens neighbours of the last position (stories, or a given ``latent_index``).
    ``progress(what, done, total)``, when given, is told each of ``STEPS`` before it runs and the end. ``next_ids``: the
    model's most likely next tokens, best first, when the report has computed them (else the lens finds the top one)."""
    from interp.viz.lens import latent_heatmap, lens_heatmap, neighbour_table, target_line

    def tick(i: int) -> None:
        if progress is not None:
            progress(STEPS[i] if i < len(STEPS) else "done", i, len(STEPS))

    tick(0)
    target = lens_target if lens_target is not None else next_ids[0] if next_ids else int(
        logit_lens(model, prompt, top_k=5).top_ids[-1, -1, 0])
    tick(1)
    logit = logit_lens(model, prompt, target=target, top_k=5)
    report.section(TITLE, note="Each residual stream decoded through the model's own final norm and unembedding (logit lens); "
                               "rows are block inputs, the top row is the model's output.")
    report.add_figure(TITLE, lens_heatmap(logit, "final_prob", stride=stride),
                      caption="Colour: probability each layer gives to the final top-1 token; cell text: the layer's top-1 token; "
                              "hover: top-5. Early layers often decode to the input token or to near-uniform junk.")
    report.add_figure(TITLE, lens_heatmap(logit, "kl", stride=stride), caption=KL_CAPTION)
    lines = {"logit lens": logit}
    tick(2)
    tuned, note = _tuned(model, tuned_lens)
    if tuned is not None:
        tl = logit_lens(model, prompt, target=target, top_k=5, lens=tuned)
        lines["tuned lens"] = tl
        report.add_figure(TITLE, lens_heatmap(tl, "kl", stride=stride), caption="Tuned lens: " + KL_CAPTION)
        report.add_table(TITLE, ["stream", "logit lens KL", "tuned lens KL"],
                         [[name, float(a), float(b)] for name, a, b in
                          zip(logit.layers, logit.kl.mean(1).tolist(), tl.kl.mean(1).tolist())],
                         caption="Mean KL(final || layer) over the prompt's positions, nats.")
    elif note:
        report.add_text(TITLE, note)
    report.add_figure(TITLE, target_line(lines), caption=logit.target_note or f"Target: the model's top next token {logit.target!r}.")
    tick(3)
    index, note = _index(model, latent_index)
    if index is None:
        report.add_text(TITLE, note)
        tick(4)
        return
    n = model.cfg.n_layers
    mid = default_layers(n)[len(default_layers(n)) // 2] if n > 1 else n
    ll = latent_lens(model, prompt, index, k=5)
    weak = ll.weak()
    report.add_figure(TITLE, latent_heatmap(ll, stride=stride),
                      caption=f"LatentLens: nearest stored corpus token state (cosine) over stored layers {index.layers}; {note}. "
                              f"{int(weak.sum())} of {weak.numel()} top-1 matches are weak (match percentile below {WEAK:g}: "
                              "farther than 95% of the index's own tokens are from their nearest neighbour; hover for each "
                              "cell's percentile): read those cells' neighbours as 'not in the corpus', not as a description.")
    row = ll.layers.index(mid)
    pct = float(ll.match_percentile[row, -1])
    report.add_figure(TITLE, neighbour_table(ll, query=row, pos=-1),
                      caption=f"Match percentile of the top-1: {pct:.0f}" + (" (weak: not a description)." if pct < WEAK else "."))
    tick(4)
