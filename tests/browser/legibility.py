"""Legibility of a widget view, measured in the DOM of the page that draws it.

``measure(root)`` returns, for one element (an ``Explorer`` view):

- ``height``: its rendered height in CSS px;
- ``texts``: how many visible text items it holds (SVG ``<text>`` of its figures, HTML text nodes of its controls);
- ``small``: the visible ones whose computed font size is below ``MIN_FONT_PX`` (text, size, where);
- ``overlaps``: pairs of visible SVG texts of one figure whose glyph boxes intersect. Boxes are the text's own
  ``getBBox()`` mapped to the page through ``getScreenCTM()`` (rotated tick labels are compared as the rotated
  rectangles they are, by the separating-axis test), shrunk by ``SLACK_PX`` on each side: a font's box includes its
  line gap, so two rows of text that merely touch are not an overlap;
- ``clipped``: visible SVG texts that reach outside their figure's drawing (the ``svg.main-svg`` clips them);
- ``covered``: a legend or colour bar whose box intersects a plot area (``rect.nsewdrag``: one per subplot);
- ``ticks``: per figure, per axis, how many tick labels are drawn (a category axis that drops labels when they do not
  fit shows fewer than its categories).

Text that is not displayed (``display: none``, ``visibility: hidden``, zero size, empty) is not counted; a figure's
hover layer is empty unless the mouse is on it.
"""

from __future__ import annotations

MIN_FONT_PX = 10.0
"""The smallest font size a label may have (CSS px): 10 px is the common floor for secondary chart text."""

SLACK_PX = 1.0

_MEASURE_JS = """(root, [minFont, slack]) => {
  const shown = (el) => {
    for (let e = el; e && e !== root.parentElement; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const where = (el) => {
    const fig = el.closest('.js-plotly-plot');
    const title = fig && fig.querySelector('.gtitle');
    const g = el.closest('g[class]');
    const head = fig ? 'figure "' + (title ? title.textContent.slice(0, 50) : '?') + '" ' : 'html ';
    return head + (g ? g.getAttribute('class') : el.tagName);
  };
  const out = {height: root.getBoundingClientRect().height, texts: 0, small: [], overlaps: [], clipped: [], covered: [], ticks: []};
  // HTML text (controls, tables, notes)
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || el.closest('svg') || !shown(el)) continue;
    out.texts++;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < minFont) out.small.push({text: n.textContent.trim().slice(0, 40), size, where: where(el)});
  }
  // figures
  const corners = (t) => {
    const b = t.getBBox(), m = t.getScreenCTM();
    const s = Math.min(slack, b.width / 2 - 0.01, b.height / 2 - 0.01);
    const pts = [[b.x + s, b.y + s], [b.x + b.width - s, b.y + s], [b.x + b.width - s, b.y + b.height - s], [b.x + s, b.y + b.height - s]];
    return pts.map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  const separated = (p, q) => {
    for (const poly of [p, q]) {
      for (let i = 0; i < 4; i++) {
        const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
        const nx = y2 - y1, ny = x1 - x2;
        const pr = (P) => P.map(([x, y]) => nx * x + ny * y);
        const a = pr(p), c = pr(q);
        if (Math.max(...a) <= Math.min(...c) || Math.max(...c) <= Math.min(...a)) return true;
      }
    }
    return false;
  };
  const box = (el) => el.getBoundingClientRect();
  const meets = (a, b) => a.left < b.right - slack && b.left < a.right - slack && a.top < b.bottom - slack && b.top < a.bottom - slack;
  for (const fig of root.querySelectorAll('.js-plotly-plot')) {
    if (!shown(fig)) continue;
    const svg = fig.querySelector('svg.main-svg');
    if (!svg) continue;
    const frame = box(svg);
    const items = [];
    for (const t of fig.querySelectorAll('svg.main-svg text')) {
      if (!t.textContent.trim() || !shown(t) || t.closest('.hoverlayer')) continue;
      out.texts++;
      const size = parseFloat(getComputedStyle(t).fontSize);
      if (size < minFont) out.small.push({text: t.textContent.slice(0, 40), size, where: where(t)});
      const r = box(t);
      if (r.left < frame.left - slack || r.right > frame.right + slack || r.top < frame.top - slack || r.bottom > frame.bottom + slack)
        out.clipped.push({text: t.textContent.slice(0, 40), where: where(t)});
      items.push({t, poly: corners(t), r});
    }
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const a = items[i], b = items[j];
        if (a.t.contains(b.t) || b.t.contains(a.t)) continue;
        if (!meets(a.r, b.r)) continue;  // quick reject on the axis-aligned boxes
        if (!separated(a.poly, b.poly))
          out.overlaps.push({a: a.t.textContent.slice(0, 40), b: b.t.textContent.slice(0, 40), where: where(a.t) + ' / ' + where(b.t)});
      }
    }
    const areas = [...fig.querySelectorAll('rect.nsewdrag')].filter(shown).map(box);
    for (const g of fig.querySelectorAll('g.legend, g.colorbar')) {
      if (!shown(g)) continue;
      const r = box(g);
      if (areas.some((a) => meets(a, r))) out.covered.push(where(g) + ' ' + (g.getAttribute('class') || ''));
    }
    const title = fig.querySelector('.gtitle');
    const ticks = {};
    for (const layer of fig.querySelectorAll('g.xaxislayer-above, g.yaxislayer-above')) {
      const sub = layer.closest('g.subplot');
      const axis = layer.getAttribute('class').startsWith('x') ? ' x' : ' y';
      const key = (sub ? sub.getAttribute('class').replace('subplot ', '') : '') + axis;
      ticks[key] = [...layer.querySelectorAll('text')].filter((t) => t.textContent.trim() && shown(t)).length;
    }
    out.ticks.push({title: title ? title.textContent : '', ticks});
  }
  return out;
}"""


def measure(root, min_font: float = MIN_FONT_PX, slack: float = SLACK_PX) -> dict:
    """Legibility measurements of the element behind the Playwright locator ``root`` (see the module docstring)."""
    return root.evaluate(_MEASURE_JS, [min_font, slack])


def problems(m: dict, max_height: float) -> list[str]:
    """The legibility failures in a ``measure`` result, one line each (empty: legible)."""
    out = [f"font {s['size']:g} px < {MIN_FONT_PX:g} px: {s['text']!r} ({s['where']})" for s in m["small"]]
    out += [f"overlap: {o['a']!r} and {o['b']!r} ({o['where']})" for o in m["overlaps"]]
    out += [f"clipped by the figure's edge: {c['text']!r} ({c['where']})" for c in m["clipped"]]
    out += [f"over a plot area: {c}" for c in m["covered"]]
    if m["height"] > max_height:
        out.append(f"view {m['height']:.0f} px tall > {max_height:.0f} px")
    return out
