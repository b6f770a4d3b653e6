"""Result files (issue 16): save/load round-trips (property-based), the same result gives the same bytes in any
process, and every damaged file (renamed or missing tensor, shapes that disagree with the bytes, truncated, missing
or wrong-typed metadata, a pickle) is one ``InterpError`` naming the file, never a raw exception or a ``None`` field."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from interp.errors import InterpError
from interp.io import inject_fault
from interp.predict import Prediction
from interp.steering.vectors import SteeringVectors

pytestmark = pytest.mark.robustness


def _prediction() -> Prediction:
    return Prediction("stories", ["<bos>", " mia", " ran"], torch.tensor([0.0, 1.5, 2.25]), [" a", " b"], torch.tensor([0.6, 0.3]))


def _rewrite(path, tensors=None, meta=None):
    """Rewrite ``path`` with changed tensors / metadata (what a careless tool or a bit flip does)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = dict(fh.metadata())
    header.pop("sha256")  # as a tool that rewrites the file without our checksum would (the checks below still hold)
    t = load_file(str(path))
    save_file(tensors(t) if tensors else t, str(path), metadata=meta(header) if meta else header)


@pytest.fixture
def saved(tmp_path):
    return _prediction().save(tmp_path / "p.safetensors")


def test_renamed_tensor_is_an_error_not_none(saved):
    _rewrite(saved, tensors=lambda t: {("surprisal_x" if k == "surprisal" else k): v for k, v in t.items()})
    with pytest.raises(InterpError, match=r"p\.safetensors.*(unknown entries \['surprisal_x'\]|missing fields \['surprisal'\])"):
        Prediction.load(saved)


def test_missing_tensor_is_an_error(saved):
    _rewrite(saved, tensors=lambda t: {k: v for k, v in t.items() if k != "next_probs"})
    with pytest.raises(InterpError, match=r"missing fields \['next_probs'\]"):
        Prediction.load(saved)


def test_shape_that_disagrees_with_the_tokens_is_an_error(saved):
    _rewrite(saved, tensors=lambda t: {**t, "surprisal": torch.zeros(7)})
    with pytest.raises(InterpError, match="not a valid Prediction file"):
        Prediction.load(saved)


def test_header_shape_that_disagrees_with_the_bytes_is_an_error(saved):
    raw = bytearray(saved.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    head = raw[8 : 8 + n].decode().replace('"shape":[3]', '"shape":[9]')
    saved.write_bytes(bytes(raw[:8]) + head.encode() + bytes(raw[8 + n :]))
    with pytest.raises(InterpError, match="not a readable result file"):
        Prediction.load(saved)


def test_changed_tensor_bytes_fail_the_checksum(saved):
    raw = bytearray(saved.read_bytes())
    raw[-1] ^= 0x40  # one bit of next_probs / surprisal flipped: same size, still parses
    saved.write_bytes(bytes(raw))
    with pytest.raises(InterpError, match="do not match the checksum"):
        Prediction.load(saved)


@pytest.mark.parametrize("keep", [0, 5, 8, 40, -3])
def test_truncated_file_is_an_error(saved, keep):
    saved.write_bytes(saved.read_bytes()[:keep])
    with pytest.raises(InterpError, match="p.safetensors"):
        Prediction.load(saved)


def test_missing_fields_metadata_is_an_error(saved):
    _rewrite(saved, meta=lambda h: {k: v for k, v in h.items() if k != "fields"})
    with pytest.raises(InterpError, match="no readable 'fields'"):
        Prediction.load(saved)


@pytest.mark.parametrize("fields", ["[1, 2]", "not json", json.dumps({"model": "m", "tokens": 5, "next_tokens": [" a", " b"]}),
                                    json.dumps({"model": "m", "tokens": ["a"], "next_tokens": None})])
def test_wrong_typed_metadata_is_an_error(saved, fields):
    _rewrite(saved, meta=lambda h: {**h, "fields": fields})
    with pytest.raises(InterpError, match="p.safetensors"):
        Prediction.load(saved)


def test_a_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "p.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InterpError, match="not a readable result file"):
        Prediction.load(path)
    assert not marker.exists()


def test_another_result_type_is_named(tmp_path):
    vec = SteeringVectors(torch.ones(1, 4), [0], "grains", "m")
    path = vec.save(tmp_path / "v.safetensors")
    with pytest.raises(InterpError, match="holds a SteeringVectors result, not a Prediction"):
        Prediction.load(path)


def test_saving_onto_a_folder_or_full_disk_is_a_clear_error(tmp_path):
    with pytest.raises(InterpError, match="is a folder"):
        _prediction().save(tmp_path)
    old = _prediction().save(tmp_path / "p.safetensors").read_bytes()
    with inject_fault("written", OSError(28, "No space left on device")), pytest.raises(InterpError, match="No space left"):
        _prediction().save(tmp_path / "p.safetensors")
    assert (tmp_path / "p.safetensors").read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["p.safetensors"]


SAVE = "import sys, torch; from interp.predict import Prediction; " \
       "Prediction('m', ['a','b','c'], torch.tensor([0.,1.,2.]), ['x','y'], torch.tensor([.5,.25])).save(sys.argv[1])"


def test_same_result_same_bytes_in_every_process(tmp_path):
    outs = []
    for i, seed in enumerate(("0", "1", "2")):
        path = tmp_path / f"{i}.safetensors"
        subprocess.run([sys.executable, "-c", SAVE, str(path)], check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] == outs[2]


text = st.text(max_size=12)
floats = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(text, min_size=1, max_size=6), data=st.data(), model=text)
def test_property_save_load_roundtrip(tmp_path_factory, tokens, data, model):
    surprisal = data.draw(st.lists(floats, min_size=len(tokens), max_size=len(tokens)))
    nxt = data.draw(st.lists(text, min_size=0, max_size=4))
    probs = data.draw(st.lists(floats, min_size=len(nxt), max_size=len(nxt)))
    p = Prediction(model, tokens, torch.tensor(surprisal), nxt, torch.tensor(probs, dtype=torch.float32))
    path = p.save(tmp_path_factory.mktemp("rt") / "p.safetensors")
    q = Prediction.load(path)
    assert (q.model, q.tokens, q.next_tokens) == (model, tokens, nxt)
    assert torch.equal(q.surprisal, p.surprisal) and torch.equal(q.next_probs, p.next_probs)
    assert q.save(path.with_name("q.safetensors")).read_bytes() == path.read_bytes()  # same result, same bytes


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=400))
def test_property_damaged_bytes_give_interp_error_or_the_same_result(tmp_path_factory, junk, cut):
    path = _prediction().save(tmp_path_factory.mktemp("dmg") / "p.safetensors")
    raw = path.read_bytes()
    path.write_bytes(raw[:cut] + junk)
    try:
        q = Prediction.load(path)
    except InterpError as e:
        assert "p.safetensors" in str(e)
    else:  # only an intact file (the junk landed past the end) may load, and then it is the same result
        ref = _prediction()
        assert (q.model, q.tokens, q.next_tokens) == (ref.model, ref.tokens, ref.next_tokens)
        assert torch.equal(q.surprisal, ref.surprisal) and torch.equal(q.next_probs, ref.next_probs)
