"""``TokenView``: tokens shaded by a score, the one token view that report sections and widgets both draw."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenView"]


@dataclass
class TokenView:
    """Colored tokens: ``tokens[i]`` shaded by ``scores[i]`` (diverging around 0), hover = ``hover[i]``."""

    tokens: list[str]
    scores: list[float]
    hover: list[str] | None = None
    caption: str = ""

    def spans(self) -> list[dict[str, str]]:
        """One dict per token: ``text``, ``style`` (red for positive, blue for negative, opacity = |score| / max |score|)
        and ``title`` (the hover text)."""
        top = max((abs(s) for s in self.scores), default=0.0) or 1.0
        out = []
        for i, (t, s) in enumerate(zip(self.tokens, self.scores)):
            a = min(1.0, abs(s) / top)
            rgb = "214,39,40" if s > 0 else "31,119,180"
            hover = self.hover[i] if self.hover else f"{s:+.4f}"
            out.append({"text": t, "style": f"background: rgba({rgb},{a:.3f})", "title": hover})
        return out
