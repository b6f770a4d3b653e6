"""The bundled model zoo: corpus generators, ground truth, trainers (``python -m interp.zoo``)."""

from pathlib import Path

from interp.paths import DATA_DIR

ZOO_DIR = DATA_DIR / "models"
ZOO_MODELS = {
    "stories": "GPT-2-style LM on the synthetic stories corpus (facts, copies, reliable/unreliable sources)",
    "bb": "Bigram-Backcopy model of Guo et al. 2024 (3 layers, one head each): attention sinks emerge",
}


def zoo_path(name: str) -> Path:
    """Directory of the bundled model ``name`` (it may not exist if it was never trained)."""
    return ZOO_DIR / name
