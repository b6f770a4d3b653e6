"""Contrast examples for steering: ``ContrastExample`` and JSONL reading/writing.

A contrast example is a prompt with a preferred and a dispreferred continuation. The scored sequences are
``prompt + preferred`` and ``prompt + dispreferred`` (plain string concatenation, so the answers carry their
own leading space, e.g. ``" apples"``); GrAInS writes them as x ⊕ y⁺ and x ⊕ y⁻.

A JSONL file holds one JSON object per line with the keys ``prompt``, ``preferred``, ``dispreferred`` and an
optional ``entity`` (used to keep train and held-out splits disjoint). Blank lines are ignored.

``VisionContrast`` is the same for a vision-language model: its prompt is a list of text and image parts
(``interp.models.vision``), scored as the parts followed by the answer's tokens (``interp.steering.vision``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from interp.errors import InterpError
from interp.io import atomic_write_text

__all__ = ["ContrastExample", "VisionContrast", "load_contrast", "save_contrast", "stories_contrast"]


def _check_texts(example, names: tuple[str, ...], shown: str) -> None:
    """Raise ``InterpError`` when a field of ``names`` is not non-blank text or the two answers are the same (``shown``:
    the prompt as written in the message)."""
    kind = type(example).__name__
    for name in names:
        value = getattr(example, name)
        if not isinstance(value, str) or not value.strip():
            raise InterpError(f"{kind}.{name} is empty or not a string ({value!r}): give some text")
    if example.preferred == example.dispreferred:
        raise InterpError(f"{kind} for {shown!r}: preferred and dispreferred are both {example.preferred!r}")


@dataclass(frozen=True)
class ContrastExample:
    """``prompt`` should be continued by ``preferred`` rather than ``dispreferred`` (answers include their leading space)."""

    prompt: str
    preferred: str
    dispreferred: str
    entity: str = ""

    def __post_init__(self) -> None:
        _check_texts(self, ("prompt", "preferred", "dispreferred"), self.prompt)

    def swapped(self) -> ContrastExample:
        """The same example with preferred and dispreferred exchanged."""
        return ContrastExample(self.prompt, self.dispreferred, self.preferred, self.entity)


@dataclass(frozen=True, eq=False)
class VisionContrast:
    """A contrast example whose ``prompt`` is a tuple of parts: text (``str``) and images (PIL image, ``[H, W, 3]``
    uint8 array or ``pathlib.Path``). ``preferred`` should follow the parts rather than ``dispreferred`` (answers
    carry their leading space). Compared by identity (images are arrays)."""

    prompt: tuple
    preferred: str
    dispreferred: str
    entity: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.prompt, str) or not isinstance(self.prompt, (list, tuple)) or not self.prompt:
            raise InterpError("VisionContrast.prompt must be a non-empty list of text and image parts, e.g. "
                              "[image, ' red circle,']; for a text prompt use ContrastExample")
        object.__setattr__(self, "prompt", tuple(self.prompt))
        _check_texts(self, ("preferred", "dispreferred"), self.text())

    def text(self) -> str:
        """The prompt as one string, each image part written ``<image>`` (for tables and result files)."""
        return "".join(p if isinstance(p, str) else "<image>" for p in self.prompt)

    def swapped(self) -> VisionContrast:
        """The same example with preferred and dispreferred exchanged."""
        return VisionContrast(self.prompt, self.dispreferred, self.preferred, self.entity)


def load_contrast(path: str | Path) -> list[ContrastExample]:
    """Read a JSONL file of contrast examples; raises ``InterpError`` naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise InterpError(f"no contrast file at {path} (expected JSONL with prompt/preferred/dispreferred per line)")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InterpError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise InterpError(f"{path}:{i}: expected a JSON object with prompt/preferred/dispreferred")
        missing = [k for k in ("prompt", "preferred", "dispreferred") if k not in row]
        if missing:
            raise InterpError(f"{path}:{i}: missing key(s) {', '.join(missing)}")
        try:
            out.append(ContrastExample(row["prompt"], row["preferred"], row["dispreferred"], str(row.get("entity", ""))))
        except InterpError as e:
            raise InterpError(f"{path}:{i}: {e}") from None
    if not out:
        raise InterpError(f"{path} holds no contrast examples")
    return out


def save_contrast(path: str | Path, examples: Iterable[ContrastExample]) -> Path:
    """Write ``examples`` as JSONL (atomically); returns the path."""
    lines = [json.dumps(asdict(e), ensure_ascii=False) for e in examples]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def stories_contrast(split: str, cue: str | None = None, world_seed: int = 0) -> list[ContrastExample]:
    """The ``stories`` contrast set (true food preferred over the lie food) for ``split`` ("train"/"heldout").

    ``cue=None`` gives uncued prompts "<name> likes"; a source word (e.g. "teacher", "liar") gives
    "the <cue> says <name> likes". Splits are disjoint by name (``interp.zoo.ground_truth.contrast_set``).
    """
    from interp.zoo.ground_truth import contrast_set

    return [ContrastExample(c.prompt, c.preferred, c.dispreferred, c.entity) for c in contrast_set(split, world_seed, cue)]
