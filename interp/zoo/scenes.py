"""A synthetic image world with planted truth: small RGB scenes of coloured shapes on a grid.

Each scene is a ``GRID`` x ``GRID`` grid of ``CELL``-pixel cells on a dark, slightly noisy background; a cell is
empty or holds one shape (``SHAPES``) of one colour (``COLOURS``), drawn with a little jitter in size, place and
hue. The generator knows what every cell shows, and a vision tower with patch size ``CELL`` sees one cell per
patch, so the truth of every visual token is known: ``Scene.cells`` is ``[row][col]`` of ``(colour, shape)`` or
``None``.

Everything is deterministic from ``(seed, index)``: ``scene(i, split="heldout")`` is the same picture on every
machine, and the train and held-out splits never share a seed. Captions list the objects in reading order
("red circle, blue cross."); questions ask about one object whose shape appears once ("what colour is the
circle?"), so the patch that decides the answer is known.

``SYNONYMS`` lists, for each attribute, the words that count as naming it (used to judge a lens's top words).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GRID", "CELL", "SIZE", "COLOURS", "SHAPES", "SYNONYMS", "Scene", "scene", "scenes", "caption_corpus",
    "attribute_words",
]

GRID = 4
"""cells per side"""
CELL = 12
"""pixels per cell side (= the vision tower's patch size)"""
SIZE = GRID * CELL
"""pixels per image side (48)"""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230),
    "yellow": (235, 220, 50), "purple": (150, 60, 200), "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "cross")
_BACKGROUND = (30, 30, 34)
_P_EMPTY = 0.45
_SPLIT_SEED = {"train": 0, "heldout": 1_000_003}

SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("red", "reds", "reddish", "crimson", "scarlet", "ruby", "maroon"),
    "green": ("green", "greens", "greenish", "emerald", "lime", "olive"),
    "blue": ("blue", "blues", "bluish", "navy", "azure", "cobalt", "cyan"),
    "yellow": ("yellow", "yellowish", "gold", "golden", "lemon"),
    "purple": ("purple", "violet", "lilac", "magenta", "lavender", "mauve"),
    "orange": ("orange", "oranges", "amber", "tangerine"),
    "circle": ("circle", "circles", "circular", "round", "disc", "disk", "dot", "ring", "oval", "ball"),
    "square": ("square", "squares", "box", "rectangle", "rectangular", "block", "cube", "tile"),
    "triangle": ("triangle", "triangles", "triangular", "pyramid", "wedge", "arrow"),
    "cross": ("cross", "crosses", "plus", "x"),
}
"""attribute -> the lower-case words that name it (a lens's word counts when, stripped and lower-cased, it is one)"""


@dataclass(frozen=True)
class Scene:
    """One scene: ``pixels`` [SIZE, SIZE, 3] uint8 and ``cells`` [GRID][GRID] of (colour, shape) or None."""

    pixels: np.ndarray
    cells: tuple[tuple[tuple[str, str] | None, ...], ...]
    seed: int

    @property
    def objects(self) -> list[tuple[int, int, str, str]]:
        """(row, col, colour, shape) of every object, in reading order."""
        return [(r, c, *cell) for r, row in enumerate(self.cells) for c, cell in enumerate(row) if cell is not None]

    def caption(self) -> str:
        """The objects in reading order: ``"red circle, blue cross."`` (``"nothing."`` for an empty scene)."""
        objs = self.objects
        return (", ".join(f"{col} {shape}" for _, _, col, shape in objs) if objs else "nothing") + "."

    def questions(self) -> list[dict]:
        """Questions whose answer one object decides: for each shape that appears exactly once,
        ``{"question": "what colour is the circle?", "answer": "red", "wrong": <another colour>, "patch": (row, col)}``."""
        objs = self.objects
        out = []
        rng = np.random.default_rng(self.seed + 7)
        for shape in SHAPES:
            hits = [o for o in objs if o[3] == shape]
            if len(hits) == 1:
                r, c, col, _ = hits[0]
                wrong = [x for x in COLOURS if x != col]
                out.append({"question": f"what colour is the {shape}?", "answer": col,
                            "wrong": wrong[int(rng.integers(len(wrong)))], "patch": (r, c)})
        return out

    def caption_cuts(self) -> list[tuple[str, str, tuple[int, int]]]:
        """Planted truth for attribution: (caption so far, the next word with its space, the (row, col) of the patch
        that decides it), cut before every object's colour word and before its shape word."""
        out, text = [], ""
        for k, (r, c, colour, shape) in enumerate(self.objects):
            text += "," if k else ""
            out.append((text, " " + colour, (r, c)))
            text += " " + colour
            out.append((text, " " + shape, (r, c)))
            text += " " + shape
        return out

    def patch_truth(self) -> list[tuple[int, int, str | None, str | None]]:
        """(row, col, colour or None, shape or None) of every patch, row-major: ``GRID * GRID`` entries."""
        return [(r, c, *(cell or (None, None))) for r, row in enumerate(self.cells) for c, cell in enumerate(row)]


def _draw(img: np.ndarray, r: int, c: int, colour: tuple[int, int, int], shape: str, rng: np.random.Generator) -> None:
    """Draw ``shape`` into cell (r, c) of ``img`` in place, with jitter in size, centre and hue."""
    half = CELL / 2
    size = rng.uniform(0.30, 0.42) * CELL  # half-extent in pixels
    cy = r * CELL + half + rng.uniform(-0.8, 0.8)
    cx = c * CELL + half + rng.uniform(-0.8, 0.8)
    ys, xs = np.mgrid[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] + 0.5
    dy, dx = ys - cy, xs - cx
    if shape == "circle":
        mask = dy ** 2 + dx ** 2 <= size ** 2
    elif shape == "square":
        mask = (np.abs(dy) <= size * 0.85) & (np.abs(dx) <= size * 0.85)
    elif shape == "triangle":  # apex up
        t = (dy + size) / (2 * size)  # 0 at the apex, 1 at the base
        mask = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * size)
    elif shape == "cross":
        arm = size * 0.32
        mask = ((np.abs(dy) <= arm) & (np.abs(dx) <= size)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= size))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    tint = np.clip(np.array(colour) + rng.integers(-18, 19, size=3), 0, 255)
    img[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL][mask] = tint


def scene(index: int, split: str = "train", max_objects: int | None = None) -> Scene:
    """Scene number ``index`` of ``split`` ("train" or "heldout"): the same pixels and truth on every machine.

    By default each cell holds an object with probability 0.55; ``max_objects=n``: a sparse scene of 1..n objects
    in random cells (another seed stream, so sparse and dense scenes of one index differ)."""
    if split not in _SPLIT_SEED:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    seed = _SPLIT_SEED[split] + int(index) + (0 if max_objects is None else 500_000 + 1_000 * int(max_objects))
    rng = np.random.default_rng(seed)
    img = np.empty((SIZE, SIZE, 3), dtype=np.int64)
    img[:] = _BACKGROUND
    img += rng.integers(-6, 7, size=img.shape)
    cells = []
    colours = list(COLOURS)
    full = None
    if max_objects is not None:
        n = 1 + int(rng.integers(max_objects))
        full = set(rng.choice(GRID * GRID, size=n, replace=False).tolist())
    for r in range(GRID):
        row = []
        for c in range(GRID):
            empty = rng.random() < _P_EMPTY if full is None else (r * GRID + c) not in full
            if empty:
                row.append(None)
                continue
            colour, shape = colours[int(rng.integers(len(colours)))], SHAPES[int(rng.integers(len(SHAPES)))]
            _draw(img, r, c, COLOURS[colour], shape, rng)
            row.append((colour, shape))
        cells.append(tuple(row))
    return Scene(pixels=np.clip(img, 0, 255).astype(np.uint8), cells=tuple(cells), seed=seed)


def scenes(n: int, split: str = "train", start: int = 0, max_objects: int | None = None) -> list[Scene]:
    """Scenes ``start .. start + n - 1`` of ``split`` (sparse ones of 1..``max_objects`` objects when given)."""
    return [scene(i, split, max_objects) for i in range(start, start + n)]


_TEMPLATES = (
    "the {c} {s} is next to the {c2} {s2}.", "a {c} {s}.", "i see a {c} {s} and a {c2} {s2}.",
    "the {s} is {c}.", "there is a {c} {s} on the left.", "she drew a {c} {s}.", "a small {c} {s} and a big {c2} {s2}.",
)


def caption_corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` short text-only descriptions of coloured shapes (a LatentLens corpus for the scene world; no images)."""
    rng = np.random.default_rng(seed)
    cs, ss = list(COLOURS), list(SHAPES)
    out = []
    for _ in range(n):
        t = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        out.append(t.format(c=cs[int(rng.integers(6))], s=ss[int(rng.integers(4))], c2=cs[int(rng.integers(6))],
                            s2=ss[int(rng.integers(4))]))
    return out


def attribute_words(attribute: str | None) -> tuple[str, ...]:
    """The words that name ``attribute`` (a colour or shape; ``()`` for None)."""
    return SYNONYMS.get(attribute, ()) if attribute else ()
