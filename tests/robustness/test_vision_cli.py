"""``interp report --image``: each bad image input is one line on stderr, exit status 2, and no file; a good one adds the
visual-token section (random tiny LLaVA folder, so it runs offline in seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import interp.report
from interp.models import vision
from interp.report import Report
from interp.testing import random_vlm_dir
from interp.zoo import scenes as world
from tests.robustness.test_cli_and_security import _one_line_error, _run

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    return random_vlm_dir("llava-clip", tmp_path_factory.mktemp("vlm") / "vlm")


@pytest.fixture
def quick_report(monkeypatch):
    """Record the options build_report gets instead of running every analysis (these tests are about the checks)."""
    calls = []

    def build(model, prompt, **options):
        calls.append(options)
        return Report("t")

    monkeypatch.setattr(interp.report, "build_report", build)
    return calls




def _png(path, arr):
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    s = world.scene(0).pixels
    rgba = np.concatenate([s, np.full(s.shape[:2] + (1,), 128, np.uint8)], axis=-1)  # half transparent
    (d / "text.png").write_text("not a picture", encoding="utf-8")
    return {"scene": _png(d / "scene.png", s), "rgba": _png(d / "rgba.png", rgba), "text": d / "text.png",
            "grey": _png(d / "grey.png", s[..., 0]), "missing": d / "missing.png"}


@pytest.mark.parametrize("kind, match", [
    ("text", "is not an image file that PIL can read"),
    ("missing", "--image: no image file at"),
    ("rgba", "the image has transparency"),
])
def test_bad_image_file_is_exit_2_and_no_file(vlm_dir, images, quick_report, tmp_path, capsys, kind, match):
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "--model", str(vlm_dir), "--image", str(images[kind]), "--out", str(out / "r.html"))
    _one_line_error(code, err, match)
    assert quick_report == [] and list(out.iterdir()) == []


def test_huge_image_is_refused_before_loading_the_model(vlm_dir, images, quick_report, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vision, "MAX_PIXELS", 1000)  # the 48 x 48 scene is 2,304 pixels
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "--model", "no-such-model", "--image", str(images["scene"]), "--out", str(out / "r.html"))
    _one_line_error(code, err, "over the 1,000 accepted: shrink it first")  # the image is checked first
    assert quick_report == [] and list(out.iterdir()) == []


def test_text_only_model_given_an_image(stories, images, quick_report, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = _run(capsys, "--model", "stories", "--image", str(images["scene"]), "--out", str(out / "r.html"))
    _one_line_error(code, err, "--image: model 'stories' is a text-only model and cannot take images")
    assert quick_report == [] and list(out.iterdir()) == []


@pytest.mark.parametrize("kind", ["scene", "grey"])
def test_a_good_image_reaches_the_report(vlm_dir, images, quick_report, tmp_path, capsys, kind):
    code, _ = _run(capsys, "--model", str(vlm_dir), "--image", str(images[kind]), "--out", str(tmp_path / "r.html"))
    assert code == 0 and quick_report[0]["image"] == images[kind] and (tmp_path / "r.html").exists()


def test_the_visual_section_in_a_real_report(vlm_dir, images, tmp_path, capsys):
    """The whole command on the random VLM: the report holds the visual-token section, its image inline."""
    out = tmp_path / "r.html"
    code, err = _run(capsys, "--model", str(vlm_dir), "--image", str(images["scene"]), "--out", str(out))
    assert code == 0, err
    html = out.read_text()
    assert "Visual tokens" in html and "data:image/png;base64," in html
    assert "logit lens at layer 1: patches coloured by top-1 probability" in html
    assert "embedding lens: each patch" in html and "No LatentLens index for this model" in html


def _scan(capsys, *args) -> tuple[int, str]:
    from interp.cli import main

    code = main(["scan", "--quiet", *args])
    return code, capsys.readouterr().err


def test_scan_of_images_writes_the_kind_split(vlm_dir, images, tmp_path, capsys):
    """``interp scan --image`` scans [image, question] prompts and the report gains the first / visual / text table."""
    out = tmp_path / "scan.html"
    code, err = _scan(capsys, "--model", str(vlm_dir), "--image", str(images["scene"]), "--image", str(images["grey"]),
                      "--question", " what is here?", "--out", str(out))
    assert code == 0, err
    html = out.read_text()
    assert "attention on visual" in html and "largest activation at first/visual/text" in html
    assert "2 image(s)" in html


@pytest.mark.parametrize("args, match", [
    (["--image", "IMG", "--corpus", "prose"], "give --corpus (texts) or --image"),
    ([], "give --corpus (texts) or --image"),
    (["--image", "MISSING"], "no image file at"),
    (["--image", "TEXT"], "is not an image file that PIL can read"),
    (["--image", "IMG", "--backend", "ray"], "leave out --backend ray"),
])
def test_scan_bad_image_input_is_exit_2_and_no_file(vlm_dir, images, tmp_path, capsys, args, match):
    names = {"IMG": str(images["scene"]), "MISSING": str(images["missing"]), "TEXT": str(images["text"])}
    out = tmp_path / "out"
    out.mkdir()
    code, err = _scan(capsys, "--model", str(vlm_dir), *[names.get(x, x) for x in args], "--out", str(out / "s.html"))
    _one_line_error(code, err, match)
    assert list(out.iterdir()) == []


def test_scan_of_an_image_with_a_text_only_model(images, tmp_path, capsys):
    code, err = _scan(capsys, "--model", "stories", "--image", str(images["scene"]), "--out", str(tmp_path / "s.html"))
    _one_line_error(code, err, "image prompts need a vision-language model")
    assert not (tmp_path / "s.html").exists()
