"""Token attribution: ReAGent, Integrated Gradients and baselines, faithfulness metrics.

``attribute(model, prompt, target=None, method="reagent", **options) -> TokenAttribution`` is the entry
point; ``method_names()`` lists the methods. ``embedding_ig`` is the shared Integrated-Gradients core (also
used by ``interp.steering``); ``faithfulness`` and ``compare`` evaluate attributions. ``REAGENT_FAST``: ReAGent
settings for interactive use (``attribute(model, prompt, method="reagent", **REAGENT_FAST)``).

Two settings shared across methods: ``reduction=`` (``REDUCTIONS``: "sum", "l2", "abs_sum"), how the gradient methods
and IG turn a token's d_model scores into one; ``max_points=`` (default ``MAX_POINTS``), the most path points of
either IG method (``n_steps``/``max_steps``, the former names, are deprecated). ``captum_ref.captum_layer_ig`` is the
captum ``LayerIntegratedGradients`` reference that embedding IG is tested against.
"""

from interp.attribution import methods as _methods  # noqa: F401  (the one place the built-in methods are registered)
from interp.attribution.ig import MAX_POINTS, IGOutput, embedding_ig
from interp.attribution.reagent import REAGENT_FAST
from interp.attribution.reduction import REDUCTIONS
from interp.attribution.registry import METHODS, attribute, method_names, register
from interp.attribution.result import TokenAttribution

__all__ = ["IGOutput", "MAX_POINTS", "METHODS", "REAGENT_FAST", "REDUCTIONS", "TokenAttribution", "attribute", "embedding_ig",
           "method_names", "register"]
