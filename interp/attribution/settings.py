"""Each attribution method's settings: one frozen dataclass per method, the one home of its options and their defaults.

``attribute(model, prompt, method=m, **settings)`` builds ``settings_for(m, settings)``: the method's dataclass with
those fields changed, each checked by name, type and bound first (``interp.validate.check_options``), so a misspelt
or out-of-range setting is an ``InterpError`` naming it and the valid ones. The result records the settings that were
given. A preset is an instance (``REAGENT_FAST``); an instance unpacks with ``**`` like a dict
(``attribute(m, p, method="reagent", **REAGENT_FAST)``) and ``.replace(...)`` gives a changed copy.

What the target is scored by (probability, log-probability, logit or a contrast with another token) is not a setting
but the objective (``interp.attribution.objectives``), given beside the method; ``progress`` is a callback, not a setting
either. Each method's docstring (``interp.attribution.methods``) says what its settings do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from interp.attribution.reduction import check_reduction
from interp.errors import InterpError
from interp.validate import NonNegativeFloat, NonNegativeInt, PositiveInt, Seed, Share, check_options

__all__ = ["Settings", "IGSettings", "AttentionIGSettings", "InputXGradientSettings", "GradientNormSettings",
           "AttentionSettings", "OcclusionSettings", "RandomSettings", "ReagentSettings", "REAGENT_FAST", "MAX_POINTS",
           "settings_for"]

MAX_POINTS = 800
"""The default most path points of IG over embeddings and over attention gates, the one budget name of both (the
adaptive rule usually stops earlier, at its completeness tolerance)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Base of the settings dataclasses: the mapping protocol (``**settings``), ``replace`` and ``build``.
    ``objective``: the method's default objective (None: it takes none); ``takes_answers``: whether it computes the
    whole-answer objective (``objectives.Answer``); ``takes_reduction``: whether it scores every embedding dimension
    and so has a per-token ``reduction``."""

    objective: ClassVar[str | None] = None
    takes_answers: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if "reduction" in self.keys():  # one check for every method that scores embedding dimensions
            check_reduction(self.reduction)

    def keys(self) -> list[str]:
        """The field names (so that ``**settings`` passes every field)."""
        return [f.name for f in dataclasses.fields(self)]

    def __iter__(self):
        return iter(self.keys())

    def __getitem__(self, name: str) -> Any:
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def replace(self, **changes) -> Settings:
        """A copy with ``changes``, checked as ``build`` checks them."""
        return type(self).build({**dict(self), **changes}, type(self).__name__)

    @classmethod
    def build(cls, options: dict[str, Any], method: str) -> Settings:
        """``cls(**options)`` after checking every option's name, type and bound (``InterpError`` naming it)."""
        check_options(cls, options, what=f"attribution method {method!r}")
        return cls(**options)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """{field: default} of the class."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def takes_reduction(cls) -> bool:
        """True when the method has a per-token ``reduction`` (it scores every embedding dimension)."""
        return "reduction" in cls.defaults()


@dataclass(frozen=True, kw_only=True)
class IGSettings(Settings):
    """Integrated Gradients over the token embeddings (``baseline`` one of ``BASELINES``; ``rule`` "adaptive" or a
    captum rule such as "gausslegendre"; ``reduction`` one of ``REDUCTIONS``; ``upcast``: a half-precision model
    integrates in float32; ``n_steps`` / ``max_steps``: former names of ``max_points``, deprecated)."""

    objective: ClassVar[str | None] = "prob"
    takes_answers: ClassVar[bool] = True
    baseline: str = "auto"
    max_points: PositiveInt = MAX_POINTS
    tolerance: NonNegativeFloat = 0.01
    internal_batch_size: PositiveInt | None = None
    rule: str = "adaptive"
    reduction: str = "sum"
    upcast: bool = True
    n_steps: PositiveInt | None = None
    max_steps: PositiveInt | None = None


@dataclass(frozen=True, kw_only=True)
class AttentionIGSettings(Settings):
    """IG over attention gates (``keep_bos``: the BOS position stays read; ``max_steps``: ``max_points``' former
    name, deprecated). One gate per position: no per-token reduction."""

    objective: ClassVar[str | None] = "prob"
    max_points: PositiveInt = MAX_POINTS
    tolerance: NonNegativeFloat = 0.01
    internal_batch_size: PositiveInt | None = None
    keep_bos: bool = True
    upcast: bool = True
    max_steps: PositiveInt | None = None


@dataclass(frozen=True, kw_only=True)
class InputXGradientSettings(Settings):
    """Embedding times gradient, reduced per token (signed sum by default)."""

    objective: ClassVar[str | None] = "logprob"
    reduction: str = "sum"


@dataclass(frozen=True, kw_only=True)
class GradientNormSettings(Settings):
    """The gradient w.r.t. the embeddings, reduced per token (its L2 norm by default)."""

    objective: ClassVar[str | None] = "logprob"
    reduction: str = "l2"


@dataclass(frozen=True, kw_only=True)
class AttentionSettings(Settings):
    """The last layer's attention weights: nothing to set."""


@dataclass(frozen=True, kw_only=True)
class OcclusionSettings(Settings):
    """Hide one token at a time: ``replacement`` "delete" (default: remove it; BOS is kept), "pad" (the tokenizer's
    pad, unk or eos token in its place) or a token id; ``max_rows`` sequences per forward pass."""

    objective: ClassVar[str | None] = "prob"
    replacement: str | int = "delete"
    max_rows: PositiveInt = 256


@dataclass(frozen=True, kw_only=True)
class RandomSettings(Settings):
    """The random floor: a seeded softmax of uniform draws."""

    seed: Seed = 0


@dataclass(frozen=True, kw_only=True)
class ReagentSettings(Settings):
    """ReAGent (``interp.attribution.reagent``): defaults are the settings that converge on a real vocabulary
    (``reagent.REAGENT_REAL``) with BOS never replaced; ``sampler`` "uniform", "unigram" (``sampler_texts``), "model",
    "mlm" (``mlm``, ``mlm_tokenizer``, ``trust_remote_code``) or a ``TokenSampler``; ``masks`` "cycle" or "bernoulli";
    ``batched``/``chunk``/``max_chunk``/``max_rows``/``lean``: how the forward passes are grouped (same numbers)."""

    sampler: Any = "uniform"
    replace_ratio: Share = 0.1
    keep_top_n: PositiveInt | None = None  # None: REAGENT_KEEP_TOP_N, or one less than the replaceable tokens
    stop_top_k: PositiveInt = 3
    num_probes: PositiveInt = 8
    max_steps: PositiveInt = 60
    min_steps: NonNegativeInt = 16
    masks: str = "cycle"
    seed: Seed = 0
    fix_bos: bool = True
    batched: bool = True
    chunk: PositiveInt | None = None
    max_chunk: PositiveInt = 64
    max_rows: PositiveInt = 512
    lean: bool = False
    sampler_texts: Iterable[str] | None = None
    mlm: str | Path | object | None = None
    mlm_tokenizer: object | None = None
    trust_remote_code: bool = False


REAGENT_KEEP_TOP_N = 8
"""tokens ReAGent keeps when ``keep_top_n`` is None (fewer on a prefix with fewer replaceable tokens)"""

REAGENT_FAST = ReagentSettings(num_probes=2, min_steps=10, max_steps=30)
"""ReAGent for interactive use: 2 probes, 10 updates (one cycle) before the first stop check (the widget's first
choice for ReAGent on a real LM): much cheaper than the defaults, less stable across seeds (measured against them
and inseq's ReAGent in bench/results/attribution_real.md, section 5c)."""


def settings_for(cls: type[Settings], options: dict[str, Any] | Settings, method: str) -> Settings:
    """The settings ``method`` runs with: ``options`` (a dict of fields to change, or an instance of ``cls``) over
    ``cls``'s defaults, each checked (``InterpError`` naming a bad one)."""
    if isinstance(options, Settings):
        if not isinstance(options, cls):
            raise InterpError(f"attribution method {method!r} takes {cls.__name__}, not {type(options).__name__}")
        return options
    return cls.build(dict(options), method)

