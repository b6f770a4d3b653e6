"""Token attribution: ReAGent, Integrated Gradients and baselines, faithfulness metrics.

``attribute(model, prompt, target=None, method=..., objective=None, **settings) -> TokenAttribution`` is the entry
point (``registry``); ``method_names()`` lists the methods, each registered with a frozen settings dataclass
(``settings``: ``IGSettings``, ``ReagentSettings``, ...; a preset such as ``REAGENT_FAST`` is an instance and unpacks
with ``**``). The objective, what is explained, is registered once (``objectives``: "prob", "logprob", "logit",
``Contrast(against)``, and ``Answer(against=None)``: a whole answer's log-probability, or GrAInS's contrast of two
answers, computed by ``answers``). ``embedding_ig`` is the shared Integrated-Gradients core (also used by ``interp.steering``);
``faithfulness``, ``compare`` and ``truth`` evaluate attributions.

Two settings shared across methods: ``reduction=`` (``REDUCTIONS``: "sum", "l2", "abs_sum"), how the gradient methods
and IG turn a token's d_model scores into one; ``max_points=`` (default ``MAX_POINTS``), the most path points of
either IG method (``n_steps``/``max_steps``, the former names, are deprecated). ``captum_ref.captum_layer_ig`` is the
captum ``LayerIntegratedGradients`` reference that embedding IG is tested against.

Layers inside the package (pyproject.toml's import-linter contract): evaluation (``compare``, ``captum_ref``,
``planted``) over ``truth`` (the one ground-truth record, ``TruthPrompt``), ``faithfulness`` and the built-in
``methods``, over the ``registry`` (the entry point), over the algorithms (``answers``, ``attention_ig``, ``reagent``; ``ig``,
``samplers``) over their parts (``objectives``, ``settings``, ``forward``, ``baselines``, ``quadrature``; ``lean``,
``reduction``, ``vision``, ``result``).
"""

from interp.attribution import methods as _methods  # noqa: F401  (the one place the built-in methods are registered)
from interp.attribution.ig import MAX_POINTS, IGOutput, embedding_ig
from interp.attribution.objectives import Answer, Contrast
from interp.attribution.reduction import REDUCTIONS
from interp.attribution.registry import DEFAULT_METHOD, METHODS, SETTINGS, attribute, method_names, register
from interp.attribution.result import TokenAttribution
from interp.attribution.settings import REAGENT_FAST

__all__ = ["Answer", "Contrast", "DEFAULT_METHOD", "IGOutput", "MAX_POINTS", "METHODS", "REAGENT_FAST", "REDUCTIONS", "SETTINGS",
           "TokenAttribution", "attribute", "embedding_ig", "method_names", "register"]
