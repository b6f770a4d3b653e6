"""Names of visual positions in the extreme-token scan: a visual token's id is replaced by a negative **patch code**
(one per image, row and column), so that the streaming statistics (which tally token ids) name the patch, and the
report shows it as ``<img R,C>`` (``<img I:R,C>`` for image I > 0), as the token views do."""

from __future__ import annotations

from interp.models.vision import visual_label

__all__ = ["patch_code", "code_label"]

_STEP = 1000  # codes: -(1 + (image * _STEP + row) * _STEP + col); grids and image counts stay far below 1000


def patch_code(image: int, row: int, col: int) -> int:
    """The negative code of the visual token of patch (``row``, ``col``) of image ``image``."""
    return -(1 + (image * _STEP + row) * _STEP + col)


def code_label(code: int) -> str:
    """The ``<img R,C>`` name of a negative patch code (``patch_code``'s inverse, as a label)."""
    c = -int(code) - 1
    return visual_label(c // (_STEP * _STEP), (c // _STEP) % _STEP, c % _STEP)
