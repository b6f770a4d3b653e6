"""Token attribution: ReAGent, Integrated Gradients and baselines, faithfulness metrics.

``attribute(model, prompt, target=None, method="reagent", **options) -> TokenAttribution`` is the entry
point; ``method_names()`` lists the methods. ``embedding_ig`` is the shared Integrated-Gradients core (also
used by ``interp.steering``); ``faithfulness`` and ``compare`` evaluate attributions. ``REAGENT_FAST``: ReAGent
settings for interactive use (``attribute(model, prompt, method="reagent", **REAGENT_FAST)``).
"""

from interp.attribution import methods as _methods  # noqa: F401  (the one place the built-in methods are registered)
from interp.attribution.ig import IGOutput, embedding_ig
from interp.attribution.reagent import REAGENT_FAST
from interp.attribution.registry import METHODS, attribute, method_names, register
from interp.attribution.result import TokenAttribution

__all__ = ["IGOutput", "METHODS", "REAGENT_FAST", "TokenAttribution", "attribute", "embedding_ig", "method_names", "register"]
