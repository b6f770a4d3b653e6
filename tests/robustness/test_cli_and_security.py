"""The ``interp`` command line and code execution (issue 16): bad input is one line on stderr with exit status 2
and no file; a masked-LM folder with custom code is refused without a prompt and without running it."""

from __future__ import annotations

import builtins
import json
import pickle

import pytest

import interp.report
from interp.cli import REPORT_NEW_TOKENS, main
from interp.errors import InterpError
from interp.io import inject_fault
from interp.report import Report

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]


@pytest.fixture
def quick_report(monkeypatch):
    """Replace the full analysis run by a one-section report: these tests are about the command's checks."""
    calls = []

    def build(model, prompt, **options):
        calls.append((prompt, options))
        r = Report("t")
        r.add_text("Prompt", prompt)
        return r

    monkeypatch.setattr(interp.report, "build_report", build)
    return calls


def _run(capsys, *args) -> tuple[int, str]:
    code = main(["report", "--quiet", *args])
    return code, capsys.readouterr().err


def _one_line_error(code: int, err: str, match: str) -> None:
    assert code == 2
    assert err.startswith("interp: error: ") and err.strip().count("\n") == 0, err
    assert match in err, err


def test_prompt_that_leaves_no_room_for_generation(stories, quick_report, tmp_path, capsys):
    n_room = stories.cfg.n_ctx - REPORT_NEW_TOKENS
    long = " ".join(["mia"] * n_room)  # BOS + n_room words: one token too many
    code, err = _run(capsys, "--prompt", long, "--out", str(tmp_path / "r.html"))
    _one_line_error(code, err, f"shorten the prompt to at most {n_room} tokens")
    assert quick_report == [] and list(tmp_path.iterdir()) == []
    fits = " ".join(["mia"] * (n_room - 1))
    assert _run(capsys, "--prompt", fits, "--out", str(tmp_path / "r.html"))[0] == 0


@pytest.mark.parametrize("kind", ["pickle", "other-model", "text"])
def test_invalid_subnetwork_file_is_exit_2_before_any_work(stories, random_models, quick_report, tmp_path, capsys, kind):
    path = tmp_path / "sub.safetensors"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "text":
        path.write_text("hello")
    else:
        import torch

        from interp.subnetworks import Subnetwork
        from interp.subnetworks.maskable import find_maskable

        other = random_models["gpt2"]
        w = find_maskable(other)[0]
        Subnetwork.from_masks(other, {w.name: torch.ones(w.shape, dtype=torch.bool)}).save(path)
    code, err = _run(capsys, "--subnetwork", str(path), "--out", str(tmp_path / "r.html"))
    _one_line_error(code, err, "sub.safetensors" if kind != "other-model" else "found on another model")
    assert quick_report == [] and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, match", [(["--prompt", "   "], "--prompt is empty"), (["--out", "."], "is a folder"),
                                         (["--out", "/nonexistent/dir/r.html"], "does not exist"),
                                         (["--subnetwork", "/nonexistent.safetensors"], "no such file")])
def test_bad_arguments(quick_report, capsys, args, match):
    code, err = _run(capsys, *args)
    _one_line_error(code, err, match)  # exit 2, one line on stderr, naming the problem
    assert quick_report == []  # refused before any analysis ran


def test_full_disk_at_out(stories, quick_report, tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("previous")
    with inject_fault("written", OSError(28, "No space left on device")):
        code, err = _run(capsys, "--out", str(out))
    _one_line_error(code, err, "No space left on device")
    assert out.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_nul_byte_in_the_prompt_is_not_written_raw(stories, quick_report, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert _run(capsys, "--prompt", "mia found\x00 a key", "--out", str(out))[0] == 0
    assert b"\x00" not in out.read_bytes() and "mia found\ufffd a key" in out.read_text()


# ---- no code runs unasked ---------------------------------------------------------------------------------------------
CUSTOM_CODE = '''
from pathlib import Path
Path({marker!r}).write_text("the folder's code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil"
'''


@pytest.fixture
def custom_code_folder(tmp_path):
    folder = tmp_path / "evil-mlm"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "configuration_evil.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    (folder / "modeling_evil.py").write_text(CUSTOM_CODE.format(marker=str(marker)))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilForMaskedLM"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForMaskedLM": "modeling_evil.EvilForMaskedLM",
                     "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    return folder, marker


def _no_prompt(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"something asked the user: {a}")

    monkeypatch.setattr(builtins, "input", refuse)


def test_mlm_sampler_refuses_custom_code_without_asking(stories, custom_code_folder, monkeypatch):
    from interp.attribution.samplers import MLMSampler

    folder, marker = custom_code_folder
    _no_prompt(monkeypatch)
    with pytest.raises(InterpError, match="needs its own Python code.*trust_remote_code=True"):
        MLMSampler(stories, folder)
    assert not marker.exists()


def test_reagent_with_mlm_folder_refuses_custom_code(stories, custom_code_folder, monkeypatch):
    from interp.attribution import attribute

    folder, marker = custom_code_folder
    _no_prompt(monkeypatch)
    with pytest.raises(InterpError, match="needs its own Python code"):
        attribute(stories, "mia found a key", method="reagent", sampler="mlm", mlm=str(folder))
    with pytest.raises(InterpError, match="trust_remote_code must be True or False"):
        attribute(stories, "mia found a key", method="reagent", sampler="mlm", mlm=str(folder), trust_remote_code="yes")
    assert not marker.exists()


def test_mlm_sampler_still_loads_a_plain_local_folder(stories, tmp_path, monkeypatch):
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from interp.attribution.samplers import MLMSampler

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "mia", "found", "a", "key", "the", "garden", "door"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "mlm")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=64)).save_pretrained(tmp_path / "mlm")
    _no_prompt(monkeypatch)
    sampler = MLMSampler(stories, tmp_path / "mlm", top_k=5)
    tokens = stories.to_tokens("mia found a key")[0]
    out = sampler.sample(tokens, 4, torch.Generator().manual_seed(0))
    assert out.shape == (4, tokens.shape[0]) and int(out.max()) < stories.cfg.d_vocab
