"""Self-contained HTML reports: ``Report`` collects sections; ``build_report`` runs every analysis."""

from interp.report.document import Report, Section, TokenView
from interp.report.sections import build_report

__all__ = ["Report", "Section", "TokenView", "build_report"]
