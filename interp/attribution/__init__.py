"""Token attribution: ReAGent, Integrated Gradients and baselines, faithfulness metrics.

``embedding_ig`` is the shared Integrated-Gradients core (also used by ``interp.steering``);
``TokenAttribution`` is the result type of every method.
"""

from interp.attribution.ig import IGOutput, embedding_ig
from interp.attribution.result import TokenAttribution

__all__ = ["IGOutput", "TokenAttribution", "embedding_ig"]
