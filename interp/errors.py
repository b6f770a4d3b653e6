"""User-facing errors: each names the problem and what to do. The CLI prints them as one line."""


class InterpError(ValueError):
    """Bad input to the workbench (unknown model, empty prompt, bad target, unwritable path, ...)."""
