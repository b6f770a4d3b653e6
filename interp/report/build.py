"""``build_report``: the overview, then every section of ``interp report`` in order.

``SECTIONS`` lists (title, ``add_to_report``) pairs imported from ``interp.report.sections``; a section that raises
is shown as an error section and the others still run, so the report always saves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm.auto import tqdm

from interp.models import model_name
from interp.report.document import Report
from interp.report.sections import attribution, extreme, lens, overview, steering, subnetworks, vision
from interp.validate import check_known, check_types, option_names

SECTIONS: list[tuple[str, Callable[..., None]]] = [
    ("Lenses", lens.add_to_report),
    ("Visual tokens", vision.add_to_report),
    ("Extreme tokens", extreme.add_to_report),
    ("Token attribution", attribution.add_to_report),
    ("Steering", steering.add_to_report),
    ("Bigram subnetwork", subnetworks.add_to_report),
]
"""The analysis sections after the overview, in report order: (title shown if it fails, ``add_to_report``)."""


def build_report(model, prompt: str | None = None, *, progress: bool = True, **options) -> Report:
    """Run the overview and every section of ``SECTIONS`` on ``prompt`` (default: ``interp.prompts.default_prompt``,
    chosen by model); each section gets the ``options`` it names, and one that no section takes (or of a wrong type) raises
    ``InterpError`` naming it and the valid ones before anything runs. Returns the ``Report`` (not saved)."""
    check_section_options(options)
    if prompt is None:
        from interp.prompts import default_prompt

        prompt = default_prompt(model)
    report = Report(f"Interpretability report: {model_name(model)}", subtitle=f"prompt: {prompt}")
    overview.add_to_report(report, model, prompt)
    for title, add in tqdm(SECTIONS, desc="report", disable=not progress):
        try:
            add(report, model, prompt, **_own(add, options))
        except Exception as e:  # one failing analysis must not lose the others
            print(f"interp report: section {title!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
            report.add_error(title, f"{type(e).__name__}: {e}")
    return report


def check_section_options(options: dict) -> None:
    """Raise ``InterpError`` unless every one of ``options`` is a keyword option of some section's ``add_to_report``
    and fits that section's annotation of it."""
    known = list(dict.fromkeys(n for _, add in SECTIONS for n in option_names(add)))
    check_known(options, known, what="build_report()")
    for _, add in SECTIONS:
        check_types(add, _own(add, options), what="build_report()")


def _own(add: Callable[..., None], options: dict) -> dict:
    """The ``options`` that section function ``add`` names as keyword options."""
    names = set(option_names(add))
    return {k: v for k, v in options.items() if k in names}
