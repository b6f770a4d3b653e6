"""Interrupts and the project's writers (issue 16): Ctrl-C during mask training exits non-zero and never replaces a
complete result; the lens, mask and report writers leave the old file under an injected failure; saved subnetworks
that are damaged or made for another model are one ``InterpError``."""

from __future__ import annotations

import os
import pickle
import signal

import pytest
import torch

import interp.subnetworks.train as train_module
from interp.errors import InterpError
from interp.io import inject_fault
from interp.lens import TunedLens
from interp.report import Report
from interp.subnetworks import Subnetwork
from interp.subnetworks.__main__ import main as subnetworks_main
from interp.subnetworks.__main__ import partial_path

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

ARGS = ["stories", "--train-docs", "20", "--eval-docs", "4", "--batch-size", "2"]


@pytest.fixture(scope="module")
def complete(tmp_path_factory, stories):  # noqa: ARG001 - the model is then cached for main()
    out = tmp_path_factory.mktemp("sub") / "stories-bigram.safetensors"
    assert subnetworks_main([*ARGS, "--steps", "3", "--out", str(out)]) == 0
    return out


def test_sigint_during_training_exits_nonzero_and_keeps_the_complete_file(complete, monkeypatch, capsys):
    before = complete.read_bytes()
    real, calls = train_module.masked_forward, []

    def forward(*a, **k):  # a real Ctrl-C arrives at step 5 of 3000
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(train_module, "masked_forward", forward)
    # a job started in the background by a non-interactive shell (as CI may be) inherits SIGINT ignored; a user's
    # terminal delivers it as KeyboardInterrupt: give the test that terminal's handler
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = subnetworks_main([*ARGS, "--steps", "3000", "--out", str(complete)])
    finally:
        signal.signal(signal.SIGINT, old)
    err = capsys.readouterr().err
    assert code == 130
    assert complete.read_bytes() == before  # the complete result is untouched
    part = partial_path(complete)
    assert part.name == "stories-bigram.partial.safetensors" and str(part) in err and "interrupted at step" in err
    sub = Subnetwork.load(part)
    assert sub.config["stopped"] == "interrupted" and sub.config["partial"] and sub.config["steps_run"] < 3000
    assert "evaluation" not in sub.config
    assert sorted(p.name for p in complete.parent.iterdir()) == sorted([complete.name, part.name])


@pytest.mark.parametrize("args, match", [(["--steps", "0"], "--steps must be at least 1"),
                                         (["--lr", "nan"], "--lr must be a finite number"),
                                         (["--batch-size", "-1"], "--batch-size must be at least 1"),
                                         (["--seq-len", "1"], "--seq-len must be at least 2")])
def test_subnetworks_bad_arguments_are_one_line_exit_2(tmp_path, capsys, args, match):
    assert subnetworks_main([*ARGS, *args, "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and err.count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_damaged_subnetwork_files(complete, tmp_path, random_models):
    pick = tmp_path / "evil.safetensors"
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pick.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InterpError, match="evil.safetensors is not a readable subnetwork file"):
        Subnetwork.load(pick)
    assert not marker.exists()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(complete.read_bytes()[:1000])
    with pytest.raises(InterpError, match="cut.safetensors"):
        Subnetwork.load(cut)
    with pytest.raises(InterpError, match="found on another model"):
        Subnetwork.load(complete, random_models["gpt2"])


@pytest.mark.parametrize("step", ["created", "written"])
def test_mask_writer_keeps_the_old_file_on_failure(complete, tmp_path, step):
    sub = Subnetwork.load(complete)
    out = sub.save(tmp_path / "m.safetensors")
    before = out.read_bytes()
    with inject_fault(step, OSError(28, "No space left on device")), pytest.raises(InterpError, match="No space left"):
        sub.empty().save(out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_mask_files_are_byte_identical(complete, tmp_path):
    sub = Subnetwork.load(complete)
    assert sub.save(tmp_path / "a.safetensors").read_bytes() == complete.read_bytes()


@pytest.mark.parametrize("step", ["written", "old-aside", "new-in"])
def test_tuned_lens_writer_leaves_a_loadable_lens(random_models, tmp_path, step):
    model = random_models["gpt2"]
    old = TunedLens.for_model(model)
    path = old.save(tmp_path / "lens")
    new = TunedLens.for_model(model)
    with torch.no_grad():
        new.translators[0].bias.fill_(1.0)
    with inject_fault(step), pytest.raises(KeyboardInterrupt):
        new.save(path)
    got = TunedLens.load(path, model)
    expect = 1.0 if step == "new-in" else 0.0
    assert float(got.translators[0].bias[0]) == expect
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens"]


@pytest.mark.parametrize("damage, match", [("config", "config.json is not JSON"), ("params", "params.safetensors does not fit"),
                                           ("shape", "params.safetensors does not fit")])
def test_damaged_tuned_lens_folders(random_models, tmp_path, damage, match):
    model = random_models["gpt2"]
    path = TunedLens.for_model(model).save(tmp_path / "lens")
    if damage == "config":
        (path / "config.json").write_text("{not json")
    elif damage == "params":
        (path / "params.safetensors").write_bytes((path / "params.safetensors").read_bytes()[:100])
    else:
        text = (path / "config.json").read_text().replace('"d_model": 64', '"d_model": 32')
        (path / "config.json").write_text(text)
    with pytest.raises(InterpError, match=match):
        TunedLens.load(path)


@pytest.mark.parametrize("step", ["created", "written"])
def test_report_writer_keeps_the_old_report(tmp_path, step):
    out = tmp_path / "r.html"
    out.write_text("old report")
    r = Report("t")
    r.add_text("s", "new")
    with inject_fault(step), pytest.raises(KeyboardInterrupt):
        r.save(out)
    assert out.read_text() == "old report" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_report_has_no_raw_control_characters():
    r = Report("title\x00", subtitle="prompt: a\x00b\x1bc")
    r.add_text("s\x07", "nul \x00 here\ttab\nnewline")
    r.add_table("t", ["c\x00"], [["v\x00"]])
    html = r.to_html()
    assert "\x00" not in html and "\x1b" not in html and "\x07" not in html
    assert "a\ufffdb\ufffdc" in html and "\ttab\nnewline" in html
