"""The report's visual-token section ends with the patch heatmap of an attribution of the model's answer (its greedy
next token after the image): the heatmap holds that attribution's visual-token scores, the image travels inside the
page, the method and the text after the image are options, and an unknown method is refused."""

from __future__ import annotations

import numpy as np
import pytest

from interp.attribution import attribute
from interp.errors import InterpError
from interp.report import Report, build_report
from interp.report.build import check_section_options
from interp.report.sections.vision import TITLE, add_to_report
from interp.testing import random_vlm
from interp.zoo import scenes as world


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def _answer_figure(report: Report):
    return [v for k, v in report.section(TITLE).items if k == "figure"][-1]


def test_the_answer_heatmap_holds_the_attribution_of_the_greedy_token(vlm):
    img = world.scene(2).pixels
    r = Report("t")
    add_to_report(r, vlm, "ab", image=img, vision_attribution="input_x_gradient")
    fig, caption = _answer_figure(r)
    expect = attribute(vlm, [img], None, method="input_x_gradient")  # same seed-free method: same scores
    heat = next(t for t in fig.data if t.type == "heatmap")
    z = np.array([[np.nan if v is None else v for v in row] for row in heat.z], dtype=float)
    assert np.allclose(z, expect.patch_scores(-1)[0].numpy(), equal_nan=True)
    assert repr(expect.target_tokens[-1]) in caption and "input_x_gradient" in caption
    assert fig.data[0].source.startswith("data:image/png;base64,")
    html = r.to_html()
    assert 'src="http' not in html and "Token attribution of the model&#39;s answer" in html  # escaped caption


def test_text_after_the_image_and_options(vlm):
    img = world.scene(3).pixels
    r = Report("t")
    add_to_report(r, vlm, "ab", image=img, vision_prompt="cd")
    _, caption = _answer_figure(r)
    assert "and 'cd'" in caption and "gradient_norm" in caption
    check_section_options({"vision_attribution": "occlusion", "vision_prompt": "x"})
    with pytest.raises(InterpError, match="unknown attribution method 'nope'"):
        add_to_report(Report("t"), vlm, "ab", image=img, vision_attribution="nope")
    rep = build_report(vlm, "ab", progress=False, image=img, vision_attribution="gradient_norm")
    assert any("Token attribution of the model" in c for k, (f, c) in
               ((k, v) for k, v in rep.section(TITLE).items if k == "figure"))
