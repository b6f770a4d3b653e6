"""Inputs that used to hang (issue 36), each now a bounded, one-line ``InterpError``: a FIFO in a model folder, a
config with absurd sizes (refused before anything is allocated), a Ray address where no cluster listens."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from interp import load_model
from interp.errors import InterpError
from interp.models import loading
from interp.zoo import zoo_path

pytestmark = pytest.mark.robustness


@pytest.fixture
def bb_copy(tmp_path):
    return shutil.copytree(zoo_path("bb"), tmp_path / "bb")


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
def test_fifo_in_a_model_folder_is_refused_not_read(bb_copy, name):
    (bb_copy / name).unlink()
    os.mkfifo(bb_copy / name)  # opening it for reading would block until a writer comes: forever
    with pytest.raises(InterpError, match=rf"{name} is a FIFO \(named pipe\), not a regular file") as err:
        load_model(bb_copy, device="cpu")
    assert "\n" not in str(err.value)


def test_symlinked_weights_still_load(bb_copy, tmp_path):
    """Hugging Face's own cache links every file; a link to a regular file is fine."""
    (bb_copy / "model.safetensors").rename(tmp_path / "weights.safetensors")
    (bb_copy / "model.safetensors").symlink_to(tmp_path / "weights.safetensors")
    assert load_model(bb_copy, device="cpu").cfg.n_layers == 3


@pytest.mark.parametrize("key, value", [("n_layer", 100000), ("n_embd", 10**6), ("vocab_size", 10**9), ("n_positions", 10**9)])
def test_absurd_size_is_refused_before_allocating(bb_copy, monkeypatch, key, value):
    cfg = json.loads((bb_copy / "config.json").read_text())
    (bb_copy / "config.json").write_text(json.dumps(dict(cfg, **{key: value})))
    import transformer_lens.model_bridge as bridge

    monkeypatch.setattr(bridge.TransformerBridge, "boot_transformers", lambda *a, **k: pytest.fail("the model was built"))
    with pytest.raises(InterpError, match=rf"config\.json: {key} is {value:,}, more than any model has"):
        load_model(bb_copy, device="cpu")


def test_sizes_each_plausible_but_together_absurd_are_refused(bb_copy):
    cfg = json.loads((bb_copy / "config.json").read_text())
    cfg.update(n_layer=2000, n_embd=60000, n_inner=240000)  # ~1e14 parameters
    (bb_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InterpError, match=r"n_layer, n_embd, n_inner, vocab_size, n_positions imply about 1\.2e\+14 parameters"):
        load_model(bb_copy, device="cpu")


def test_parameter_estimate_is_close_for_a_real_config():
    """The estimate feeds a bound, it is not a count (it takes a gated three-matrix MLP and an untied head), but it is
    within a factor of two: GPT-2 small has 124M parameters."""
    n, keys = loading.estimate_parameters({"n_layer": 12, "n_embd": 768, "vocab_size": 50257, "n_positions": 1024})
    assert 124e6 < n < 2 * 124e6 and keys == ["n_layer", "n_embd", "vocab_size", "n_positions"]


def test_dead_ray_address_is_refused_within_the_bound(tmp_path, capsys, monkeypatch):
    """``ray.init(address="127.0.0.1:1")`` retries forever; nothing listens on port 1, so the probe is refused at once."""
    import ray

    from interp.cli import main
    from interp.scale.backends import run_items
    from interp.scale.cluster import check_reachable

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was called on a dead address"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(InterpError, match=r"no Ray cluster at 127\.0\.0\.1:1 \(.* within 10 s\): start one there"):
        list(run_items([{"shard": 0}], backend="ray", spec="stories", task="scan", settings={}, address="127.0.0.1:1"))
    corpus = tmp_path / "c.txt"
    corpus.write_text("one day mia found a key in the garden .\n\nthe cat sat on the mat .\n")
    assert main(["scan", "--model", "stories", "--corpus", str(corpus), "--out", str(tmp_path / "s.html"), "--backend", "ray",
                 "--address", "127.0.0.1:1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no Ray cluster at 127.0.0.1:1" in err
    monkeypatch.setenv("RAY_ADDRESS", "ray://127.0.0.1:1")
    with pytest.raises(InterpError, match=r"no Ray cluster at ray://127\.0\.0\.1:1"):
        list(run_items([{"shard": 0}], backend="ray", spec="stories", task="scan", settings={}))
    for bad in ("127.0.0.1", "host:port", ":6379", "10.0.0.1:70000"):
        with pytest.raises(InterpError, match="is not host:port"):
            check_reachable(bad)
