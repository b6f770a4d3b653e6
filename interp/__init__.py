"""Interpretability workbench for transformer language models.

``interp.load_model(spec)`` returns a TransformerLens ``TransformerBridge``; analyses live in the
sub-packages (``interp.lens``, ``interp.extreme``, ``interp.subnetworks``, ``interp.attribution``,
``interp.steering``), figures in ``interp.viz``, reports in ``interp.report``.
"""

from interp.errors import InterpError
from interp.models import load_model

__version__ = "0.1.0"
__all__ = ["InterpError", "load_model", "__version__"]
