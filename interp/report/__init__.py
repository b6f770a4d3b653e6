"""Self-contained HTML reports: ``Report`` collects sections; ``build_report`` runs every analysis.

One module per capability in ``interp.report.sections``; ``TokenView`` (from ``interp.viz.tokens``) is re-exported.
"""

from interp.report.build import build_report
from interp.report.document import Report, Section
from interp.viz.tokens import TokenView

__all__ = ["Report", "Section", "TokenView", "build_report"]
