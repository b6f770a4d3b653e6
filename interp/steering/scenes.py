"""Steering data from the scene world (``interp.zoo.scenes``): colour hallucination on a VLM, with planted truth.

The questions are the caption cuts that bench/vlm_attribution.py and the attribution tests use
(``Scene.caption_cuts``): the prompt is the image and the caption so far (``[pixels, " red circle,"]``), the answer the
next object's colour word, decided by that object's patch. A VLM trained on captions of 1-3-object scenes, as both
VLMs here were, hallucinates colours on busier scenes: at up to 6 objects the SmolLM2 VLM names the right colour
first on 0.68 of 109 held-out cuts (bench/results/vlm_grains.md; 0.93 at up to 3 objects on 30 held-out scenes). The contrast of a cut:

- preferred: the true colour of the object (``" red"``);
- dispreferred: a plausible wrong colour, **another colour present in the scene** (the colour of another object: the
  binding error a captioner makes when it reads the wrong patch), chosen with a seeded generator among them; a scene
  whose objects all share one colour gets a seeded other colour (a colour absent from the picture).

A second task, ``text_prior_contrast``, is hallucination a language prior drives (the kind GrAInS's VLM results are
about): before the image the prompt holds text that names a **wrong colour** for the first object's shape, one to
three times (``"green circle. green circle."``, a caption of some other picture); the question is the first colour
word after the image. The model copies the text's colour instead of reading its picture on part of them (the
SmolLM2 VLM: bench/results/vlm_grains_prior.md). Preferred: the object's true colour; dispreferred: the text's colour, one
absent from the picture. ``text_prior_contrast(..., repeats=(0,))`` gives the same questions without the text.

``kinds=("colour", "shape")`` adds the cuts before shape words, contrasted the same way. Splits: the train and
held-out scenes of ``interp.zoo.scenes`` never share a seed; ``captions`` of fluency come from scenes after the
question scenes (``start`` past them), so no image is both a question and a fluency caption.
"""

from __future__ import annotations

import numpy as np

from interp.errors import InterpError
from interp.steering.data import VisionContrast
from interp.zoo import scenes as world

__all__ = ["scene_contrast", "text_prior_contrast", "scene_captions", "MAX_OBJECTS", "KINDS"]

MAX_OBJECTS = 6
"""objects per scene (1..6): twice what the VLMs were trained to caption, where they start to hallucinate colours"""
KINDS = ("colour", "shape")
WRONG = ("next", "present")


def scene_contrast(split: str, n_scenes: int, *, start: int = 0, max_objects: int = MAX_OBJECTS,
                   kinds: tuple[str, ...] = ("colour",), wrong: str = "next", seed: int = 0) -> list[VisionContrast]:
    """Contrast examples of scenes ``start .. start + n_scenes - 1`` of ``split`` (module docstring): one per cut
    before an object's colour word (and shape word with "shape" in ``kinds``). Returns ``VisionContrast`` examples whose
    ``entity`` is ``"<split>:<scene index>"``."""
    if wrong not in WRONG:
        raise InterpError(f"unknown wrong={wrong!r}; choose from {', '.join(WRONG)}")
    bad = set(kinds) - set(KINDS)
    if bad or not kinds:
        raise InterpError(f"unknown kinds {sorted(bad)}; choose from {', '.join(KINDS)}")
    out = []
    for i in range(start, start + n_scenes):
        s = world.scene(i, split, max_objects=max_objects)
        rng = np.random.default_rng([seed, s.seed])
        objs = s.objects
        cuts = s.caption_cuts()  # colour cut, shape cut per object, in reading order
        for k, (_, _, colour, shape) in enumerate(objs):
            for kind, (text, word, _) in zip(KINDS, cuts[2 * k : 2 * k + 2]):
                if kind not in kinds:
                    continue
                true = colour if kind == "colour" else shape
                attr = [o[2] if kind == "colour" else o[3] for o in objs]
                present = sorted(set(attr) - {true})
                later = [a for a in attr[k + 1 :] if a != true]
                if wrong == "next" and later:
                    present = later[:1]
                pool = present or [x for x in (world.COLOURS if kind == "colour" else world.SHAPES) if x != true]
                other = pool[int(rng.integers(len(pool)))]
                prompt = (s.pixels, text) if text else (s.pixels,)
                out.append(VisionContrast(prompt, word, " " + other, f"{split}:{i}"))
    return out


def text_prior_contrast(split: str, n_scenes: int, *, start: int = 0, max_objects: int = 3,
                        repeats: tuple[int, ...] = (1, 2, 3), seed: int = 0) -> list[VisionContrast]:
    """One question per scene ``start .. start + n_scenes - 1`` of ``split`` (module docstring): prompt ``(text,
    pixels)`` where ``text`` names a seeded wrong colour for the first object's shape ``r`` times (``r`` drawn from
    ``repeats``; 0: the image alone), answer the first object's colour. Returns ``VisionContrast`` examples whose
    ``entity`` is ``"<split>:<scene index>"`` and whose dispreferred answer is the text's colour."""
    if not repeats or any(not isinstance(r, int) or r < 0 for r in repeats):
        raise InterpError(f"repeats must be counts >= 0, got {repeats!r}")
    out = []
    for i in range(start, start + n_scenes):
        s = world.scene(i, split, max_objects=max_objects)
        rng = np.random.default_rng([seed, s.seed, 7])
        _, _, colour, shape = s.objects[0]
        absent = [c for c in world.COLOURS if c not in {o[2] for o in s.objects}]
        wrong = absent[int(rng.integers(len(absent)))]
        r = repeats[int(rng.integers(len(repeats)))]
        text = " ".join([f"{wrong} {shape}."] * r)
        prompt = (text, s.pixels) if r else (s.pixels,)
        out.append(VisionContrast(prompt, " " + colour, " " + wrong, f"{split}:{i}"))
    return out


def scene_captions(split: str, n_scenes: int, *, start: int = 1000, max_objects: int | None = 3) -> list[tuple[tuple, str]]:
    """Fluency items: ``((pixels,), " red circle, blue cross.")`` for scenes ``start ..`` of ``split``: the caption
    the VLM was trained to write for its image (1-3 objects by default, the training regime), scored given the image."""
    return [((s.pixels,), " " + s.caption()) for s in world.scenes(n_scenes, split, start=start, max_objects=max_objects)]
