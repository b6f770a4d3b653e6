"""Seeded synthetic English corpus for the ``stories`` model, with its ground truth as data.

A *world* fixes a fact base once per seed: every person has a home city, a food they really like and
a food that unreliable sources claim they like. Documents are sequences of sentences drawn from six
templates; the generator records, for every sampled word, the log-probability of the choice that
produced it, so the exact entropy of the corpus is known (the text-to-choices map is injective).

Ground truth exposed to the method issues:

- ``World.home`` / ``World.likes_true`` / ``World.likes_lie``: the fact base (entity -> attribute).
- ``Document.dependencies``: (source word, target word, kind) pairs where a later word is fully
  determined by one earlier word (a repeated name or object, the subject of a fact question).
- ``reliable_sources`` state true preferences, ``unreliable_sources`` state the lie; uncued
  ``"<name> likes <food>"`` statements are true half the time, so without a cue the model answers near
  chance between the true and the lie food (the steerable behaviour).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

NAMES = [
    "mia", "leo", "ava", "sam", "zoe", "max", "ivy", "ben", "lily", "owen", "ella", "noah", "ruby",
    "jack", "nora", "finn", "emma", "liam", "rosa", "omar", "lucy", "hugo", "iris", "theo", "kate",
    "adam", "jade", "paul", "anna", "ezra", "vera", "carl",
]
CITIES = [
    "paris", "london", "rome", "tokyo", "cairo", "lima", "oslo", "delhi", "madrid", "berlin",
    "dublin", "vienna", "prague", "seoul", "quito", "athens",
]
FOODS = [
    "apples", "pears", "bread", "cheese", "rice", "soup", "cake", "plums", "grapes", "beans",
    "honey", "fish", "pasta", "eggs", "nuts", "melons",
]
OBJECTS = ["ball", "book", "key", "hat", "coin", "kite", "shell", "lamp", "cup", "map", "box", "drum"]
PLACES = ["park", "garden", "forest", "kitchen", "market", "river", "school", "yard", "cave", "barn"]
ADJECTIVES = ["small", "happy", "old", "brave", "quiet", "red", "tired", "clever"]
ANIMALS = ["cat", "dog", "bird", "horse", "mouse", "frog", "duck", "goat"]
VERBS = ["sleeps", "runs", "sings", "jumps", "eats", "hides", "waits", "swims"]
RELIABLE_SOURCES = ["teacher", "doctor", "judge"]
UNRELIABLE_SOURCES = ["liar", "joker", "fox"]

# Sentence templates and their sampling weights.
TEMPLATES = {"fact": 2, "question": 2, "copy": 3, "sourced": 3, "uncued": 2, "filler": 2}


@dataclass(frozen=True)
class World:
    """The fact base of one seed: ``home[name] = city``, ``likes_true[name]``, ``likes_lie[name]``."""

    seed: int
    home: dict[str, str]
    likes_true: dict[str, str]
    likes_lie: dict[str, str]

    @classmethod
    def from_seed(cls, seed: int = 0) -> World:
        """Draw the fact base for ``seed``; the lie food is always different from the true one."""
        rng = random.Random(seed)
        home = {n: rng.choice(CITIES) for n in NAMES}
        likes_true, likes_lie = {}, {}
        for n in NAMES:
            true, lie = rng.sample(FOODS, 2)
            likes_true[n], likes_lie[n] = true, lie
        return cls(seed, home, likes_true, likes_lie)

    def split_names(self, heldout_fraction: float = 0.375) -> tuple[list[str], list[str]]:
        """Names split into (train, held-out) for contrast sets, disjoint by entity, seeded."""
        names = sorted(NAMES)
        random.Random(self.seed + 1).shuffle(names)
        k = round(len(names) * heldout_fraction)
        return sorted(names[k:]), sorted(names[:k])


@dataclass(frozen=True)
class Dependency:
    """A later word fully determined by one earlier word; indices are word indices in ``Document.words``."""

    source: int
    target: int
    kind: str  # "repeat_name", "repeat_object", "fact_subject"


@dataclass(frozen=True)
class Document:
    """One generated document.

    ``words``: the words, joined by single spaces into ``text``.
    ``logprob``: natural-log probability of the text under the generator (sum over choices).
    ``dependencies``: ground-truth copy and fact dependencies, by word index.
    """

    words: tuple[str, ...]
    logprob: float
    dependencies: tuple[Dependency, ...] = field(default=())

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def char_span(self, word_index: int) -> tuple[int, int]:
        """(start, end) character offsets of word ``word_index`` in ``text``."""
        start = sum(len(w) + 1 for w in self.words[:word_index])
        return start, start + len(self.words[word_index])


class _Sampler:
    """Samples sentences and accumulates the log-probability of every choice."""

    def __init__(self, world: World, rng: random.Random):
        self.world, self.rng = world, rng
        self.words: list[str] = []
        self.deps: list[Dependency] = []
        self.logprob = 0.0

    def pick(self, options: list[str]) -> str:
        self.logprob -= math.log(len(options))
        return self.rng.choice(options)

    def coin(self, p: float) -> bool:
        heads = self.rng.random() < p
        self.logprob += math.log(p if heads else 1 - p)
        return heads

    def emit(self, *words: str) -> int:
        """Append words; return the index of the first one."""
        start = len(self.words)
        self.words.extend(words)
        return start

    def sentence(self) -> None:
        names, weights = list(TEMPLATES), list(TEMPLATES.values())
        kind = self.rng.choices(names, weights)[0]
        self.logprob += math.log(TEMPLATES[kind] / sum(weights))
        getattr(self, "_" + kind)()

    def _fact(self) -> None:
        n = self.pick(NAMES)
        self.emit(n, "lives", "in", self.world.home[n], ".")

    def _question(self) -> None:
        n = self.pick(NAMES)
        i = self.emit("where", "does", n, "live", "?", "in", self.world.home[n], ".")
        self.deps.append(Dependency(i + 2, i + 6, "fact_subject"))

    def _copy(self) -> None:
        n, o, p = self.pick(NAMES), self.pick(OBJECTS), self.pick(PLACES)
        i = self.emit("one", "day", n, "found", "a", o, "in", "the", p, ".", "then", n, "took", "the", o, "home", ".")
        self.deps.append(Dependency(i + 2, i + 11, "repeat_name"))
        self.deps.append(Dependency(i + 5, i + 14, "repeat_object"))

    def _sourced(self) -> None:
        reliable = self.coin(0.5)
        s = self.pick(RELIABLE_SOURCES if reliable else UNRELIABLE_SOURCES)
        n = self.pick(NAMES)
        food = (self.world.likes_true if reliable else self.world.likes_lie)[n]
        self.emit("the", s, "says", n, "likes", food, ".")

    def _uncued(self) -> None:
        n = self.pick(NAMES)
        food = (self.world.likes_true if self.coin(0.5) else self.world.likes_lie)[n]
        self.emit(n, "likes", food, ".")

    def _filler(self) -> None:
        self.emit("the", self.pick(ADJECTIVES), self.pick(ANIMALS), self.pick(VERBS), ".")


def generate(world: World, n_docs: int, seed: int, max_words: int = 96) -> list[Document]:
    """Generate ``n_docs`` documents of at most ``max_words`` words each (sentences are never cut).

    Deterministic for (world, n_docs, seed). Each document's ``logprob`` covers exactly its words.
    """
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        doc = _Sampler(world, rng)
        while True:
            trial = _Sampler(world, rng)
            trial.sentence()
            if len(doc.words) + len(trial.words) > max_words:
                break
            offset = len(doc.words)
            doc.emit(*trial.words)
            doc.logprob += trial.logprob
            doc.deps += [Dependency(d.source + offset, d.target + offset, d.kind) for d in trial.deps]
        docs.append(Document(tuple(doc.words), doc.logprob, tuple(doc.deps)))
    return docs


def vocabulary() -> list[str]:
    """Every word the generator can emit, sorted."""
    words = set(NAMES + CITIES + FOODS + OBJECTS + PLACES + ADJECTIVES + ANIMALS + VERBS)
    words |= set(RELIABLE_SOURCES + UNRELIABLE_SOURCES)
    words |= {"lives", "in", ".", "where", "does", "live", "?", "one", "day", "found", "a", "the", "then",
              "took", "home", "says", "likes"}
    return sorted(words)
