"""User-facing errors: each names the problem and what to do. The commands print them as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable


class InterpError(ValueError):
    """Bad input to the workbench (unknown model, empty prompt, bad target, unwritable path, ...)."""


def run_command(prog: str, run: Callable[[], int]) -> int:
    """The exit status of ``run()`` for the command ``prog``: what it returns; 2 after printing an ``InterpError`` as one
    line ``<prog>: error: ...`` on stderr; 130 after Ctrl-C (``<prog>: interrupted; nothing was written``)."""
    try:
        return run()
    except InterpError as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130
