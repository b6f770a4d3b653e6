"""LatentIndex robustness (issue 16): a NaN query is an error; every tampered index folder fails on load with one
InterpError naming the damaged file (never a raw exception, never a silently wrong index)."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp.errors import InterpError
from interp.lens import LatentIndex
from interp.testing import random_model

TEXTS = ["abc defg hij klm", "the cat sat on the mat", "hello there general", "one two three four five six"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = random_model("gpt2", n_layers=2, d_model=16)
    index = LatentIndex.build(model, TEXTS, layers=[1, 2], max_per_token=None, progress=False)
    return index, index.save(tmp_path_factory.mktemp("idx") / "index")


@pytest.fixture
def folder(saved, tmp_path):
    return shutil.copytree(saved[1], tmp_path / "copy")


def _edit_json(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def _rewrite(path, edit):
    tensors = load_file(str(path))
    save_file(edit(tensors), str(path))


def test_nan_and_inf_queries_are_errors(saved):
    index = saved[0]
    for bad in (float("nan"), float("inf")):
        q = torch.randn(3, index.d_model)
        q[1, 4] = bad
        with pytest.raises(InterpError, match="query vector 1 has NaN or infinite"):
            index.search(q)
    with pytest.raises(InterpError, match="all zeros"):
        index.search(torch.zeros(index.d_model))


def test_intact_folder_loads(saved, folder):
    back = LatentIndex.load(folder)
    assert len(back) == len(saved[0]) and torch.equal(back.vectors[2], saved[0].vectors[2])


def _vector_width_cut(f):
    _rewrite(f / "layer_1.safetensors", lambda t: dict(t, vectors=t["vectors"][:, :-1].contiguous()))
    return "layer_1.safetensors"


def _rows_dropped(f):
    _rewrite(f / "layer_2.safetensors", lambda t: {k: v[:-3].contiguous() for k, v in t.items()})
    return "layer_2.safetensors"


def _metadata_rows_dropped(f):
    _rewrite(f / "rows.safetensors", lambda t: dict(t, token_ids=t["token_ids"][:-1].contiguous()))
    return "rows.safetensors"


def _tensor_renamed(f):
    _rewrite(f / "layer_1.safetensors", lambda t: {"vecs": t["vectors"], "inv_norms": t["inv_norms"]})
    return "layer_1.safetensors"


def _d_model_changed(f):
    _edit_json(f / "index.json", d_model=17)
    return "layer_1.safetensors"


def _dtype_load(f):
    _edit_json(f / "index.json", dtype="load")
    return "index.json"


def _dtype_wrong(f):
    _edit_json(f / "index.json", dtype="float32")  # the files hold float16
    return "layer_1.safetensors"


def _not_json(f):
    (f / "index.json").write_text("{not json")
    return "index.json"


def _rows_field_text(f):
    _edit_json(f / "index.json", rows="many")
    return "index.json"


def _pickle_layer(f):
    (f / "layer_2.safetensors").write_bytes(pickle.dumps({"vectors": [1, 2, 3]}))
    return "layer_2.safetensors"


def _truncated_layer(f):
    p = f / "layer_1.safetensors"
    p.write_bytes(p.read_bytes()[:-40])
    return "layer_1.safetensors"


def _truncated_header(f):
    p = f / "rows.safetensors"
    p.write_bytes(p.read_bytes()[:20])
    return "rows.safetensors"


def _empty_layer(f):
    (f / "layer_1.safetensors").write_bytes(b"")
    return "layer_1.safetensors"


def _missing_vocab(f):
    (f / "vocab.json").unlink()
    return "vocab.json"


def _vocab_not_list(f):
    (f / "vocab.json").write_text('{"a": 1}')
    return "vocab.json"


def _missing_layer(f):
    (f / "layer_2.safetensors").unlink()
    return "layer_2.safetensors"


def _rows_point_outside(f):
    _rewrite(f / "rows.safetensors", lambda t: dict(t, doc_ids=t["doc_ids"] + 100))
    return "rows.safetensors"


CASES = [_vector_width_cut, _rows_dropped, _metadata_rows_dropped, _tensor_renamed, _d_model_changed, _dtype_load,
         _dtype_wrong, _not_json, _rows_field_text, _pickle_layer, _truncated_layer, _truncated_header, _empty_layer,
         _missing_vocab, _vocab_not_list, _missing_layer, _rows_point_outside]


@pytest.mark.parametrize("tamper", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_tampered_folder_is_one_clear_error(folder, tamper):
    name = tamper(folder)
    with pytest.raises(InterpError) as err:
        LatentIndex.load(folder)
    assert name in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_dtype_is_never_looked_up_on_torch(folder, monkeypatch):
    """"dtype": "load" must not reach getattr(torch, ...): torch.load is never called."""
    _dtype_load(folder)
    called = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: called.append(a))
    with pytest.raises(InterpError, match="not one of float16"):
        LatentIndex.load(folder)
    assert not called
