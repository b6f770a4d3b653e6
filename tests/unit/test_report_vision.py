"""The visual-token report section: nothing for a text-only model, a note for a VLM without an image, and for a VLM with
an image one patch-grid figure and one top-1 table per lens (LatentLens when an index is given), offline and escaped."""

from __future__ import annotations

import pytest

from interp.lens.latent import LatentIndex
from interp.report import Report, build_report
from interp.report.build import check_section_options
from interp.report.sections.vision import TITLE, _columns, add_to_report
from interp.testing import random_model, random_vlm
from interp.zoo import scenes as world


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def _kinds(report: Report) -> list[str]:
    return [kind for kind, _ in report.section(TITLE).items]


def test_text_only_model_gets_no_section():
    r = Report("t")
    add_to_report(r, random_model("llama"), "ab", image=world.scene(0).pixels)
    assert r.sections == []


def test_vlm_without_image_gets_a_note(vlm):
    r = Report("t")
    add_to_report(r, vlm, "ab")
    assert _kinds(r) == ["text"] and "--image" in r.section(TITLE).items[0][1]


def test_vlm_with_image_gets_a_grid_and_a_table_per_lens(vlm):
    index = LatentIndex.build(vlm, world.caption_corpus(30), progress=False)
    r = Report("t")
    add_to_report(r, vlm, "ab", image=world.scene(1).pixels, latent_index=index)
    assert _kinds(r) == ["figure", "table"] * 3 + ["figure"]  # the last: the answer's patch attribution
    figs = [v[0] for k, v in r.section(TITLE).items if k == "figure"][:3]
    assert [f.layout.title.text.split(" lens")[0] for f in figs] == ["logit", "embedding", "latent"]
    assert all(f.data[0].source.startswith("data:image/png;base64,") for f in figs)
    columns, rows, _ = next(v for k, v in r.section(TITLE).items if k == "table")
    assert columns[0] == "patch (row, col)" and len(rows) == world.GRID ** 2  # one row per patch
    assert len(columns) == 1 + vlm.cfg.n_layers + 1  # layers 0..n
    html = r.to_html()
    assert 'src="http' not in html and "data:image/png;base64," in html  # the image travels inside the page


def test_the_image_option_is_known_to_build_report(vlm):
    check_section_options({"image": world.scene(0).pixels, "vision_layer": 1})
    r = build_report(vlm, "ab", progress=False, image=world.scene(0).pixels)
    assert TITLE in [s.title for s in r.sections]


def test_table_columns_are_strided_with_first_and_last():
    assert _columns(list(range(5))) == [0, 1, 2, 3, 4]
    cols = _columns(list(range(31)))
    assert len(cols) <= 9 and cols[0] == 0 and cols[-1] == 30
