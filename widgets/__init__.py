"""Jupyter widgets (ipywidgets 8 core controls + ``widgets.base.Figure``, a plotly FigureWidget) over the ``interp`` analyses.

Every explorer derives from ``widgets.base.Explorer``: controls are disabled and a progress bar shows
while a computation runs, errors appear inside the widget, and "Export HTML" writes the current view
as a self-contained report.
"""

from widgets.base import Explorer
from widgets.extreme import SinkExplorer
from widgets.steering import SteeringPlayground

__all__ = ["Explorer", "SinkExplorer", "SteeringPlayground"]


def __getattr__(name: str):
    """Lazy access to the explorers, e.g. ``widgets.VisualTokenExplorer`` (imports its analysis only when used)."""
    if name == "AttributionExplorer":
        from widgets.attribution import AttributionExplorer

        return AttributionExplorer
    if name == "VisualTokenExplorer":
        from widgets.vision import VisualTokenExplorer

        return VisualTokenExplorer
    raise AttributeError(f"module 'widgets' has no attribute {name!r}")
