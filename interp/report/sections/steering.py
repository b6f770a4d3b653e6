"""Report section for steering: contrastive attribution of the prompt, steered continuations, and (for the
bundled ``stories`` model with its shipped vectors) accuracy and perplexity versus alpha on the held-out set."""

from __future__ import annotations

from pathlib import Path

from interp.models import greedy_ids, model_name, to_tokens
from interp.paths import DATA_DIR
from interp.predict import greedy_continuation
from interp.steering.attribution import grains_attribution
from interp.steering.data import ContrastExample, load_contrast
from interp.steering.evaluate import evaluate
from interp.steering.vectors import SteeringVectors
from interp.zoo import bundled_name
from interp.zoo.heldout import heldout_stories

TITLE = "Steering (GrAInS)"
DATA = DATA_DIR


def shipped_vectors(model) -> dict[str, SteeringVectors]:
    """The vectors shipped in data/steering/ for this model ({} when there are none or they do not fit)."""
    name = Path(model_name(model)).name
    out = {}
    for method in ("grains", "mean_difference"):
        path = DATA / "steering" / f"{name}_{method}.safetensors"
        if path.is_file():
            vec = SteeringVectors.load(path)
            if vec.vectors.shape[1] == model.cfg.d_model and max(vec.layers) < model.cfg.n_layers:
                out[method] = vec
    return out


def _contrast_for(model, prompt: str, preferred: str | None, dispreferred: str | None,
                  next_ids: list[int] | None = None) -> ContrastExample:
    """The user's answers, or the model's two most likely next tokens (``next_ids`` when the report computed them)."""
    if preferred and dispreferred:
        return ContrastExample(prompt, preferred, dispreferred)
    top = next_ids[:2] if next_ids and len(next_ids) >= 2 else greedy_ids(model, to_tokens(model, prompt), k=2).tolist()
    words = [model.tokenizer.decode([t]) for t in top]
    if any(not w.strip() for w in words) or words[0] == words[1]:
        words = [model.tokenizer.convert_ids_to_tokens(t) for t in top]
    return ContrastExample(prompt, words[0], words[1])


def add_to_report(report, model, prompt: str, *, preferred: str | None = None, dispreferred: str | None = None,
                  vectors: dict | SteeringVectors | None = None, alphas: list[float] | None = None,
                  n_steps: int = 20, next_ids: list[int] | None = None) -> None:
    """Add the steering section: attribution of log P(preferred) − log P(dispreferred) for ``prompt`` (default
    answers: the model's top-2 next tokens), steered vs unsteered continuations when vectors exist (``vectors`` or
    the shipped ones), and the held-out evaluation figure for ``stories``. ``next_ids``: the model's most likely next
    tokens when the report has computed them."""
    from interp.viz.steering import contrast_attribution_figure, contrast_token_view, steering_curves

    example = _contrast_for(model, prompt, preferred, dispreferred, next_ids)
    att = grains_attribution(model, example, max_points=n_steps, k=2)
    report.add_tokens(TITLE, contrast_token_view(att))
    report.add_figure(TITLE, contrast_attribution_figure(att))
    sets = {vectors.method: vectors} if isinstance(vectors, SteeringVectors) else dict(vectors or shipped_vectors(model))
    if not sets:
        report.add_text(TITLE, "No steering vectors for this model: fit some with interp.steering.fit_grains "
                               "(see notebooks/05_grains_steering.ipynb).")
        return
    first = next(iter(sets.values()))
    if alphas:
        grid = list(alphas)
    elif first.meta.get("alpha"):
        grid = [round(first.meta["alpha"] * f, 3) for f in (0.5, 1.0, 1.5)]
    else:
        scale = float(first.meta["resid_norm"][0]) if first.meta.get("resid_norm") else 1.0
        grid = [round(scale * f, 3) for f in (0.25, 0.5, 1.0)]
    rows = [["unsteered", "-", "", prompt + greedy_continuation(model, prompt, 8)]]
    for name, vec in sets.items():
        for a in grid:
            with vec.steer(model, a):
                rows.append([name, a, str(vec.layers), prompt + greedy_continuation(model, prompt, 8)])
    report.add_table(TITLE, ["vectors", "alpha", "layers", "greedy continuation"], rows,
                     caption="Norm-preserving steering at every position (prompt and generated tokens).")
    held = DATA / "contrast" / "stories_heldout_uncued.jsonl"
    if bundled_name(model) == "stories" and held.is_file():
        ev = evaluate(model, sets, load_contrast(held), alphas=grid, fluency_texts=heldout_stories(12), progress=False)
        report.add_figure(TITLE, steering_curves(ev), caption="Held-out uncued fact questions (names unseen in fitting); "
                          "perplexity on held-out stories documents.")
