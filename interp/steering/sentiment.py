"""A sentiment contrast set for steering real LMs, from templates: train and held-out disjoint by template.

Behaviour: after a review sentence with a positive or a negative cue word, a pretrained LM continues
"Overall, it was" with a word of the same sentiment. Every example prefers the *positive* answer word
(" good" over " bad", ...), so the contrast direction is "more positive", and the metric is the log-prob gap
log P(positive word) − log P(negative word) (``interp.steering.evaluate``). Examples with a negative cue start
with a negative gap: steering in the preferred direction raises it.

``sentiment_contrast(split)``: 12 subjects (the entity) x 10 cue templates x 2 polarities = 240 examples;
"train" holds templates 0-6 (168 examples), "heldout" templates 7-9 (72), so no held-out sentence frame is
seen in fitting or in the choice of layer and alpha. Cue adjectives and answer pairs are picked by a fixed
rotation, so the set is the same on every run.
"""

from __future__ import annotations

from interp.errors import InterpError
from interp.steering.data import ContrastExample

__all__ = ["sentiment_contrast", "SUBJECTS", "TEMPLATES", "ANSWERS", "TRAIN_TEMPLATES"]

SUBJECTS = ("restaurant", "hotel", "movie", "book", "phone", "concert", "cafe", "museum", "game", "laptop",
            "course", "train ride")
TEMPLATES = (
    "I went to the {s} last week and it was {a}.",
    "My friend told me the {s} was {a}, and she was right.",
    "We tried the new {s} yesterday. Honestly, it was {a}.",
    "The reviews said the {s} was {a}, and I agree.",
    "After two hours, I can tell you the {s} was {a}.",
    "Everyone at work thinks the {s} is {a}.",
    "I did not expect much, but the {s} turned out {a}.",
    "Last night the {s} was {a} from start to finish.",
    "My parents visited the {s} and found it {a}.",
    "To be fair, the {s} we chose this time was {a}.",
)
TRAIN_TEMPLATES = 7
POSITIVE = ("delightful", "fantastic", "wonderful", "superb", "excellent", "lovely")
NEGATIVE = ("dreadful", "awful", "miserable", "horrible", "terrible", "disappointing")
ANSWERS = ((" good", " bad"), (" great", " terrible"), (" nice", " awful"))
FRAME = " Overall, it was"


def sentiment_contrast(split: str = "train") -> list[ContrastExample]:
    """The sentiment examples of ``split`` ("train", "heldout" or "all"); ``entity`` is the subject.

    Returns a list of ``ContrastExample`` (preferred = the positive answer word, dispreferred = the negative one).
    """
    if split not in ("train", "heldout", "all"):
        raise InterpError(f"unknown split {split!r}; choose 'train', 'heldout' or 'all'")
    ids = {"train": range(TRAIN_TEMPLATES), "heldout": range(TRAIN_TEMPLATES, len(TEMPLATES)),
           "all": range(len(TEMPLATES))}[split]
    out = []
    for t in ids:
        for i, subject in enumerate(SUBJECTS):
            for polarity, words in ((1, POSITIVE), (-1, NEGATIVE)):
                n = t * len(SUBJECTS) + i
                cue = TEMPLATES[t].format(s=subject, a=words[n % len(words)])
                pos, neg = ANSWERS[(n + (polarity > 0)) % len(ANSWERS)]
                out.append(ContrastExample(cue + FRAME, pos, neg, entity=subject))
    return out
