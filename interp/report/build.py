"""``build_report``: the overview, then every section of ``interp report`` in order.

``SECTIONS`` lists (title, ``add_to_report``) pairs imported from ``interp.report.sections``; a section that raises
is shown as an error section and the others still run, so the report always saves.

Progress: one bar over the sections, named after the one running, and under it a bar inside that section. A long
section (lenses, extreme tokens, attribution) takes a keyword ``progress``: a ``SectionProgress`` callback
``progress(what, done, total)`` that it calls before each of its steps (``what`` is the step about to run, ``done`` the
steps finished, ``total`` all of them) and once at the end with ``done == total``; it is None when bars are off.
``progress`` is the report's, never a user option: ``build_report(**options)`` does not accept it.

The model's next token is computed once per report: a section that reads it takes a keyword ``next_ids``, the ids of the
model's two most likely next tokens after the prompt, best first (``interp.models.greedy_ids``); not a user option either.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

from tqdm.auto import tqdm

from interp.models import greedy_ids, model_name, to_tokens
from interp.report.document import Report
from interp.report.sections import attribution, extreme, lens, overview, steering, subnetworks, vision
from interp.validate import check_known, check_types, option_names

SectionProgress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: the callback a section calls between its steps (see the module docstring)."""

_HOOK = "progress"
"""The keyword by which a section takes a ``SectionProgress`` callback (excluded from the user's options)."""
_NEXT = "next_ids"
"""The keyword by which a section takes the model's two most likely next-token ids (excluded from the user's options)."""

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
    next_ids = greedy_ids(model, to_tokens(model, prompt), k=min(2, int(model.cfg.d_vocab))).tolist()
    bar = tqdm(SECTIONS, desc="report", disable=not progress)
    inner = tqdm(total=1, desc="", position=1, leave=False, disable=not progress)
    try:
        for title, add in bar:
            bar.set_description_str(f"report: {title}")
            inner.reset(total=1)
            inner.set_description_str(title)
            hook = {_HOOK: _inner_progress(inner, title) if progress else None} if takes_progress(add) else {}
            if _takes(add, _NEXT):
                hook[_NEXT] = next_ids
            try:
                add(report, model, prompt, **_own(add, options), **hook)
            except Exception as e:  # one failing analysis must not lose the others
                print(f"interp report: section {title!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
                report.add_error(title, f"{type(e).__name__}: {e}")
    finally:  # Ctrl-C still propagates (nothing is saved); the bars are closed so the terminal is left clean
        inner.close()
        bar.close()
    return report


def takes_progress(add: Callable[..., None]) -> bool:
    """Whether section function ``add`` takes the ``progress`` callback (a keyword-only ``progress`` parameter)."""
    return _takes(add, _HOOK)


def _takes(add: Callable[..., None], name: str) -> bool:
    p = inspect.signature(add).parameters.get(name)
    return p is not None and p.kind is inspect.Parameter.KEYWORD_ONLY


def _inner_progress(inner, title: str) -> SectionProgress:
    """The ``SectionProgress`` callback that shows a section's steps on the bar ``inner`` (described ``title: what``)."""
    def update(what: str, done: int, total: int) -> None:
        inner.total = max(int(total), 1)
        inner.n = min(max(int(done), 0), inner.total)
        inner.set_description_str(f"{title}: {what}" if what else title, refresh=False)
        inner.refresh()
    return update


def check_section_options(options: dict) -> None:
    """Raise ``InterpError`` unless every one of ``options`` is a keyword option of some section's ``add_to_report``
    and fits that section's annotation of it."""
    known = list(dict.fromkeys(n for _, add in SECTIONS for n in option_names(add, (_HOOK, _NEXT))))
    check_known(options, known, what="build_report()")
    for _, add in SECTIONS:
        check_types(add, _own(add, options), what="build_report()")


def _own(add: Callable[..., None], options: dict) -> dict:
    """The ``options`` that section function ``add`` names as keyword options."""
    names = set(option_names(add, (_HOOK, _NEXT)))
    return {k: v for k, v in options.items() if k in names}
