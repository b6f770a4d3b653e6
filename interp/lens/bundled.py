"""Lenses shipped with the workbench (``data/lenses/``) and the corpora used to train and query them.

``python -m interp.lens train-tuned stories`` writes ``data/lenses/stories-tuned/``. The stories corpora
come from ``interp.zoo.stories.generate`` with world seed 0: ``split="train"`` uses document seed 1 (the
seed the stories model was trained on), ``split="heldout"`` uses seed 2 (its held-out documents).
"""

from __future__ import annotations

from pathlib import Path

from interp.errors import InterpError
from interp.models import model_name
from interp.paths import DATA_DIR
from interp.zoo import bundled_name

__all__ = ["LENS_DIR", "bundled_tuned_lens", "default_index", "stories_texts"]

LENS_DIR = DATA_DIR / "lenses"
_SPLIT_SEEDS = {"train": 1, "heldout": 2}


def stories_texts(n: int, split: str = "train", world_seed: int = 0) -> list[str]:
    """``n`` documents of the stories corpus as text; ``split`` "train" (doc seed 1) or "heldout" (doc seed 2)."""
    from interp.zoo import stories

    if split not in _SPLIT_SEEDS:
        raise InterpError(f"unknown split {split!r}: use 'train' or 'heldout'")
    world = stories.World.from_seed(world_seed)
    return [d.text for d in stories.generate(world, n, seed=_SPLIT_SEEDS[split] + world_seed)]


def bundled_tuned_lens(model):
    """The shipped tuned lens for ``model`` (``data/lenses/<name>-tuned``) or ``None`` when there is none or
    it does not fit this model's weights (e.g. the model was retrained). A shipped lens whose files are damaged (its
    checksum fails) raises ``InterpError``: that is never silently the same as having no lens."""
    from interp.lens.tuned import TunedLens

    path = LENS_DIR / f"{Path(model_name(model)).name}-tuned"
    if not (path / "config.json").is_file():
        return None
    lens = TunedLens.load(path)
    try:
        lens.check_model(model)
    except InterpError:
        return None
    return lens.to(model.cfg.device).eval()


VLM_INDEX = {"smollm2-vlm": DATA_DIR / "vlm" / "smollm2-vlm-index"}
"""Shipped LatentLens indexes of the VLMs' text side (1,000 descriptions of coloured shapes + 20 manual paragraphs)."""


def default_index(model, n_docs: int = 150, progress: bool = False):
    """A small LatentLens index for a bundled model, or ``None`` for other models (no corpus is bundled for them):
    ``stories``: ``n_docs`` training-split documents, 20 rows per token (a few seconds on a CPU); ``scenes-vlm``: 300
    text descriptions of coloured shapes (``interp.zoo.scenes.caption_corpus``; under a second); ``smollm2-vlm``: the
    shipped index ``data/vlm/smollm2-vlm-index`` (checked against its recorded SHA-256s on load)."""
    from interp.lens.latent import LatentIndex

    name = bundled_name(model) or Path(model_name(model)).name
    if name in VLM_INDEX and (VLM_INDEX[name] / "index.json").is_file():
        return LatentIndex.load(VLM_INDEX[name])
    if name == "scenes-vlm":
        from interp.zoo.scenes import caption_corpus

        return LatentIndex.build(model, caption_corpus(300, seed=1), max_per_token=20, progress=progress)
    if name != "stories":
        return None
    return LatentIndex.build(model, stories_texts(n_docs, "train"), max_per_token=20, progress=progress)
