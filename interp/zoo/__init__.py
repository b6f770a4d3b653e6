"""The bundled model zoo: corpus generators, ground truth, trainers (``python -m interp.zoo``)."""

from pathlib import Path, PurePath

from interp.paths import DATA_DIR

ZOO_DIR = DATA_DIR / "models"
ZOO_MODELS = {
    "stories": "GPT-2-style LM on the synthetic stories corpus (facts, copies, reliable/unreliable sources)",
    "bb": "Bigram-Backcopy model of Guo et al. 2024 (3 layers, one head each): attention sinks emerge",
    "scenes-vlm": "LLaVA-shaped VLM of the scene world (CLIP tower, MLP connector, small Llama LM; 16 visual tokens)",
}


def zoo_path(name: str) -> Path:
    """Directory of the bundled model ``name`` (it may not exist if it was never trained)."""
    return ZOO_DIR / name


def bundled_name(model_or_name) -> str | None:
    """The zoo name (a key of ``ZOO_MODELS``, e.g. ``"stories"``) of a bundled model, or None for any other model.

    ``model_or_name``: a loaded model (its name as ``interp.models.model_name`` gives it: what ``load_model`` was
    given) or that name itself; a zoo name or a folder whose last part is one both count.
    """
    name = model_or_name
    if not isinstance(name, (str, PurePath)):
        cfg = getattr(model_or_name, "cfg", None)
        name = getattr(cfg, "interp_name", None) or getattr(cfg, "model_name", None)
    if name is None:
        return None
    last = PurePath(str(name).rstrip("/")).name
    return last if last in ZOO_MODELS else None
