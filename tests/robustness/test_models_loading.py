"""Model folders (issue 16, the lead's part in ``interp.models``): every bad folder or device is one ``InterpError``
naming the problem, and through the CLI one line with exit status 2."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from interp.cli import main
from interp.errors import InterpError
from interp.models import load_model
from interp.testing import random_model_dir

pytestmark = pytest.mark.robustness


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return random_model_dir("gpt2", tmp_path_factory.mktemp("m") / "gpt2", d_model=16, n_layers=1, n_heads=2, n_ctx=32)


@pytest.fixture
def folder(good, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(good, out)
    return out


def _cli(capsys, tmp_path, model: str, *extra: str) -> tuple[int, str]:
    code = main(["report", "--quiet", "--model", model, "--out", str(tmp_path / "r.html"), *extra])
    return code, capsys.readouterr().err


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(InterpError):
        load_model(tmp_path / "nope", device="cpu")


def test_config_of_the_wrong_type(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["n_layer"] = "four"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InterpError, match="config"):
        load_model(folder, device="cpu")


@pytest.mark.parametrize("keep", [0, 100])
def test_truncated_or_empty_weights(folder, keep):
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:keep])
    with pytest.raises(InterpError, match="model.safetensors"):
        load_model(folder, device="cpu")


def test_pickle_only_weights_are_refused_in_one_error(folder, tmp_path):
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(InterpError, match="pytorch_model.bin"):
        load_model(folder, device="cpu")


def test_unknown_device(good):
    with pytest.raises(InterpError, match="tpu9"):
        load_model(good, device="tpu9")


def test_custom_code_folder_is_refused_without_a_hub_url(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "x-custom"
    cfg["auto_map"] = {"AutoConfig": "modeling_x.XConfig", "AutoModelForCausalLM": "modeling_x.X"}
    (folder / "config.json").write_text(json.dumps(cfg))
    marker = folder.parent / "ran"
    (folder / "modeling_x.py").write_text(f"open({str(marker)!r}, 'w').write('the folder code ran')\n")
    with pytest.raises(InterpError) as e:
        load_model(folder, device="cpu")
    assert not marker.exists()
    assert "trust_remote_code" in str(e.value)
    assert "huggingface.co/" not in str(e.value) and "hf.co/" not in str(e.value)


def test_cli_unknown_model_is_one_line(capsys, tmp_path):
    code, err = _cli(capsys, tmp_path, "no-such-model-anywhere")
    assert code == 2 and err.startswith("interp: error: ") and err.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_cuda_device_this_machine_lacks(good):
    if torch.cuda.is_available():  # a GPU machine: ask for one GPU more than it has
        with pytest.raises(InterpError, match="CUDA GPU"):
            load_model(good, device=f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(InterpError, match="no CUDA GPU"):
            load_model(good, device="cuda")


def test_cli_bad_folder_is_one_line(capsys, tmp_path, folder):
    (folder / "model.safetensors").write_bytes(b"")
    code, err = _cli(capsys, tmp_path, str(folder))
    assert code == 2 and "model.safetensors" in err and err.strip().count("\n") == 0
