"""``--device``, ``--dtype``, ``--threads`` (and ``--chat``) on every ``interp`` command that runs a model, on the bundled
toy models: a bad value is one line naming it and the allowed ones, exit 2, before any model is loaded and with no file
written; good values reach ``load_model`` and torch."""

from __future__ import annotations

import pytest
import torch

import interp.models
import interp.report
from interp.cli import main
from interp.report import Report

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

TEXT = ("one day mia found a key in the garden . then mia took the key home .\n"
        "the cat sat on the mat and the dog ran .\nmia had a red ball and tom had a kite .\n")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT)
    return str(path)


@pytest.fixture
def threads():
    """Restore the torch thread count a test changes through --threads."""
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


@pytest.fixture
def loads(monkeypatch):
    """Record every load_model call (spec, options) and pass it on."""
    calls = []
    real = interp.models.load_model

    def spy(spec, *args, **kwargs):
        calls.append((spec, kwargs))
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(interp.models, "load_model", spy)
    return calls


def _commands(tmp_path, corpus):
    """(command line, dtype flag) of every command that loads a model."""
    return {
        "report": (["report", "--model", "bb", "--out", str(tmp_path / "r.html"), "--quiet"], "--dtype"),
        "scan": (["scan", "--model", "bb", "--corpus", corpus, "--out", str(tmp_path / "s.html"), "--quiet"], "--dtype"),
        "index build": (["index", "build", "--model", "stories", "--corpus", corpus, "--out", str(tmp_path / "i"), "--quiet"],
                        "--model-dtype"),
        "index search": (["index", "search", str(tmp_path / "i"), "mia found a key", "--layer", "1"], "--dtype"),
    }


BAD = [
    ("dtype", "fp8", "'fp8' is not a model precision: use one of float32, float16, bfloat16"),
    ("dtype", "int8", "'int8' is not a model precision: use one of float32, float16, bfloat16"),
    ("--threads", "0", "--threads 0 is below 1: give a count of 1 or more"),
    ("--threads", "-3", "--threads -3 is below 1"),
    ("--threads", "two", "--threads 'two' is not a whole number"),
    ("--device", "tpu", "--device 'tpu' is not a device: use one of cpu, cuda, cuda:N, mps"),
    ("--device", "xla", "--device 'xla' is not supported: use one of cpu, cuda, cuda:N, mps"),
    ("--device", "cuda", "--device 'cuda': this torch sees no CUDA GPU on this machine: use --device cpu"),
    ("--device", "cuda:1", "--device 'cuda:1': this torch sees no CUDA GPU"),
]


@pytest.mark.parametrize("command", ["report", "scan", "index build", "index search"])
@pytest.mark.parametrize(("flag", "value", "message"), BAD)
def test_a_bad_option_is_one_line_exit_2_before_loading(tmp_path, corpus, capsys, monkeypatch, loads, command, flag, value,
                                                         message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    argv, dtype_flag = _commands(tmp_path, corpus)[command]
    if flag == "dtype":
        flag, message = dtype_flag, f"{dtype_flag} {message}"
    assert main([*argv, flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("interp: error: ") and err.count("\n") == 1 and message in err, err
    assert loads == []  # checked before any model is loaded
    assert not any(tmp_path.glob("*.html")) and not (tmp_path / "i").exists()


def test_report_loads_with_the_options_and_sets_the_threads(tmp_path, capsys, monkeypatch, loads, threads):
    built = []

    def quick(model, prompt, **options):
        built.append(model)
        r = Report("t")
        r.add_text("Prompt", prompt)
        return r

    monkeypatch.setattr(interp.report, "build_report", quick)
    out = tmp_path / "r.html"
    assert main(["report", "--model", "bb", "--out", str(out), "--quiet", "--dtype", "bfloat16", "--threads", "2",
                 "--device", "cpu"]) == 0
    assert loads == [("bb", {"device": "cpu", "dtype": torch.bfloat16})]
    assert torch.get_num_threads() == 2 and out.is_file()
    assert {p.dtype for p in built[0].parameters()} == {torch.bfloat16}


def test_scan_runs_a_toy_model_in_float16(tmp_path, corpus, capsys, loads, threads):
    out = tmp_path / "s.html"
    assert main(["scan", "--model", "bb", "--corpus", corpus, "--out", str(out), "--quiet", "--dtype", "float16",
                 "--threads", "1"]) == 0
    assert loads == [("bb", {"device": "cpu", "dtype": torch.float16})]  # the local backend defaults to the CPU
    assert "Extreme-token scan" in out.read_text() and torch.get_num_threads() == 1


def test_index_built_and_searched_in_one_precision(tmp_path, corpus, capsys, loads, threads):
    """--model-dtype builds the index with a bfloat16 model (the index's own --dtype stays its storage type); a search
    must use the same precision, and a mismatch says which flag caused it."""
    index = str(tmp_path / "i")
    assert main(["index", "build", "--model", "stories", "--corpus", corpus, "--layers", "1,2", "--out", index, "--quiet",
                 "--model-dtype", "bfloat16", "--dtype", "float16", "--threads", "1"]) == 0
    assert loads[-1] == ("stories", {"device": "cpu", "dtype": torch.bfloat16})
    capsys.readouterr()
    assert main(["index", "search", index, "mia found a key", "--layer", "2", "--dtype", "bfloat16"]) == 0
    assert "⟨ key⟩" in capsys.readouterr().out
    assert main(["index", "search", index, "mia found a key", "--layer", "2", "--dtype", "float32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dtype float32 changed the weights' precision" in err
    assert main(["index", "build", "--model", "stories", "--corpus", corpus, "--out", str(tmp_path / "j"), "--dtype",
                 "int4"]) == 2
    assert "--dtype 'int4' is not a storage type of the index: use one of float16, bfloat16, float32" in capsys.readouterr().err


def test_ray_refuses_a_dtype_its_workers_would_not_apply(tmp_path, corpus, capsys, loads):
    assert main(["scan", "--model", "bb", "--corpus", corpus, "--out", str(tmp_path / "s.html"), "--quiet", "--backend",
                 "ray", "--dtype", "float16"]) == 2
    assert "--dtype applies to the local backend" in capsys.readouterr().err and loads == []


def test_chat_on_a_model_without_a_template_and_system_without_chat(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(interp.report, "build_report", lambda *a, **k: pytest.fail("must stop before the analyses"))
    out = tmp_path / "r.html"
    assert main(["report", "--model", "bb", "--out", str(out), "--quiet", "--chat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model 'bb' has no chat template" in err
    assert main(["report", "--model", "bb", "--out", str(out), "--quiet", "--system", "be brief"]) == 2
    assert "--system is the system message of a chat prompt: add --chat" in capsys.readouterr().err
    assert not out.exists()


def test_chat_wraps_the_report_prompt_in_the_template(tmp_path, capsys, monkeypatch):
    prompts = []

    def quick(model, prompt, **options):
        prompts.append(prompt)
        return Report("t")

    monkeypatch.setattr(interp.report, "build_report", quick)
    real = interp.models.load_model

    def with_template(spec, *args, **kwargs):
        model = real(spec, *args, **kwargs)
        model.tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[assistant]"
        return model

    monkeypatch.setattr(interp.models, "load_model", with_template)
    assert main(["report", "--model", "stories", "--out", str(tmp_path / "r.html"), "--quiet", "--chat", "--prompt",
                 "where is mia", "--system", "be brief"]) == 0
    assert prompts == ["[system] be brief [user] where is mia [assistant]"]
