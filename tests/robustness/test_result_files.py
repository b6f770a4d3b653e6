"""Result files (issues 15, 16): save/load round-trips (property-based), the same result gives the same bytes in any
process, and every damaged file (renamed or missing tensor, shapes that disagree with the bytes, truncated, missing
or wrong-typed metadata, a pickle) is one ``InterpError`` naming the file, never a raw exception or a ``None`` field,
for every result class (token attribution, faithfulness, IG output, subnetwork), whose list lengths the base checks."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

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


# ---- every result class (issue 15): one base, strict files, list lengths checked by the base ----------------------
def _attribution():
    from interp.attribution.result import TokenAttribution

    return TokenAttribution("m", ["<bos>", " a", " b"], [" c"], torch.tensor([[0.1, 0.2, 0.3]]), "integrated_gradients",
                            {"n_steps": 8}, target_ids=[5], source_ids=[1, 2, 3], completeness_error=torch.tensor([0.01]))


def _faithfulness():
    from interp.attribution.faithfulness import Faithfulness

    metrics = ["soft_ns", "soft_nc", "soft_ns_random", "soft_nc_random", "hard_sufficiency", "hard_comprehensiveness",
               "hard_sufficiency_random", "hard_comprehensiveness_random", "s0"]
    values = torch.tensor([[0.5, 0.4, 0.25, 0.2, 0.9, 0.3, 0.8, 0.1, 0.05], [0.3, 0.2, 0.25, 0.4, 0.7, 0.1, 0.8, 0.3, 0.1]],
                          dtype=torch.float64)
    return Faithfulness("m", "occlusion", [" c", " d"], metrics, values, {"n_samples": 4, "seed": 0})


def _ig():
    from interp.attribution.ig import IGOutput

    return IGOutput(torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]), torch.tensor([3.0, 3.5]), torch.tensor([0.0, 0.5]),
                    "zero_keep_bos", 9, [(5, 0.2, 0.1), (9, 0.01, 0.005)])


def _subnetwork():
    from interp.subnetworks.bigram import BigramTable
    from interp.subnetworks.maskable import MaskableWeight
    from interp.subnetworks.subnetwork import Subnetwork

    weights = [MaskableWeight("w0", "h.0.q", 0, "Q", (2, 3)), MaskableWeight("w1", "h.0.mlp.in", 0, "MLP in", (3, 2))]
    masks = {"w0": torch.tensor([[True, False, True], [False, False, True]]), "w1": torch.ones(3, 2, dtype=torch.bool)}
    table = BigramTable.from_sequences([torch.tensor([0, 1, 2, 1, 0])], 4)
    return Subnetwork(weights, masks, {"name": "m", "n_layers": 1, "d_model": 3, "d_vocab": 4}, "bigram", table,
                      {"lam": 1.0}, [{"step": 0, "loss": 1.5}])


# (factory, a tensor entry of its file, a JSON field of its file)
RESULTS = {"TokenAttribution": (_attribution, "scores", "source_tokens"), "Faithfulness": (_faithfulness, "values", "metrics"),
           "IGOutput": (_ig, "attributions", "history"), "Subnetwork": (_subnetwork, "mask.w1", "bigram_vocab")}


def _same(a, b) -> bool:
    tensors, fields = a._file_entries()
    tensors_b, fields_b = b._file_entries()
    return fields == fields_b and tensors.keys() == tensors_b.keys() and all(torch.equal(tensors[k], tensors_b[k]) for k in tensors)


@pytest.fixture(params=sorted(RESULTS))
def result_file(request, tmp_path):
    make, tensor, field = RESULTS[request.param]
    r = make()
    return type(r), r, r.save(tmp_path / "r.safetensors"), tensor, field


def _fields(header, change):
    fields = json.loads(header["fields"])
    change(fields)
    return {**header, "fields": json.dumps(fields)}


def test_every_result_round_trips(result_file):
    cls, r, path, _, _ = result_file
    back = cls.load(path)
    assert type(back) is cls and _same(back, r)
    assert back.save(path.with_name("again.safetensors")).read_bytes() == path.read_bytes()
    assert type(r).__name__ in r._repr_html_()


def test_every_result_refuses_a_renamed_tensor(result_file):
    cls, _, path, tensor, _ = result_file
    _rewrite(path, tensors=lambda t: {(k + "_old" if k == tensor else k): v for k, v in t.items()})
    with pytest.raises(InterpError, match=rf"r\.safetensors is not a valid {cls.__name__} file .*"
                                          rf"unknown entries \['{tensor}_old'\].*missing fields \['{tensor}'\]"):
        cls.load(path)


def test_every_result_refuses_a_missing_tensor(result_file):
    cls, _, path, tensor, _ = result_file
    _rewrite(path, tensors=lambda t: {k: v for k, v in t.items() if k != tensor})
    with pytest.raises(InterpError, match=rf"r\.safetensors .*missing fields \['{tensor}'\]"):
        cls.load(path)


def test_every_result_refuses_a_missing_json_field(result_file):
    cls, _, path, _, field = result_file
    _rewrite(path, meta=lambda h: _fields(h, lambda f: f.pop(field)))
    with pytest.raises(InterpError, match=rf"r\.safetensors .*missing fields \['{field}'\]"):
        cls.load(path)


def test_every_result_refuses_a_renamed_json_field(result_file):
    cls, _, path, _, field = result_file
    _rewrite(path, meta=lambda h: _fields(h, lambda f: f.update({field + "2": f.pop(field)})))
    with pytest.raises(InterpError, match=rf"unknown entries \['{field}2'\].*missing fields \['{field}'\]"):
        cls.load(path)


def test_every_result_refuses_a_file_of_another_type(result_file, tmp_path):
    cls, _, path, _, _ = result_file
    with pytest.raises(InterpError, match=f"holds a {cls.__name__} result, not a Prediction"):
        Prediction.load(path)
    with pytest.raises(InterpError, match=f"holds a Prediction result, not a {cls.__name__}"):
        cls.load(_prediction().save(tmp_path / "p.safetensors"))


def test_subnetwork_without_its_bigram_tensors_is_an_error_not_a_subnetwork_without_a_table(tmp_path):
    from interp.subnetworks.subnetwork import Subnetwork

    path = _subnetwork().save(tmp_path / "s.safetensors")
    _rewrite(path, tensors=lambda t: {k.replace("bigram.", "table."): v for k, v in t.items()})
    with pytest.raises(InterpError, match=r"s\.safetensors .*missing fields \['bigram\.pairs', 'bigram\.counts', 'bigram\.unigram'\]"):
        Subnetwork.load(path)


def test_shipped_subnetworks_load_and_keep_their_layout(tmp_path):
    from interp.results import read_safetensors
    from interp.subnetworks.subnetwork import Subnetwork

    shipped = sorted((Path(__file__).parents[2] / "data" / "subnetworks").glob("*.safetensors"))
    assert shipped
    for path in shipped:
        sub = Subnetwork.load(path)
        assert sub.bigram is not None and 0 < sub.kept_fraction < 1
        header, tensors = read_safetensors(path, what="subnetwork")
        header2, tensors2 = read_safetensors(sub.save(tmp_path / path.name), what="subnetwork")
        assert header2 == header and tensors.keys() == tensors2.keys()  # same format tag, no "type", same fields JSON
        assert all(torch.equal(tensors[k], tensors2[k]) for k in tensors)


def test_hard_sufficiency_ratio_stays_finite_when_one_minus_d_is_negative():
    from interp.attribution.faithfulness import Faithfulness

    metrics = ["hard_sufficiency", "hard_sufficiency_random"]
    # D = 1.1 for the method and 1.3 for random (the paper's D reaches sqrt 2): 1 - D < 0 for both
    f = Faithfulness("m", "occlusion", [" c"], metrics, torch.tensor([[-0.1, -0.3]], dtype=torch.float64))
    assert f["hard_sufficiency_vs_random"] == pytest.approx(math.log(1.3 / 1.1))
    assert f["hard_sufficiency_vs_random"] > 0  # nearer than random (1.1 < 1.3) reads as better


def test_faithfulness_reads_like_the_dict_it_was():
    f = _faithfulness()
    d = f.to_dict()
    assert list(d)[:9] == f.metrics and list(d)[-1] == "per_target" and list(f.keys()) == list(d)
    assert d["soft_ns"] == f["soft_ns"] == (0.5 + 0.3) / 2
    assert f["hard_comprehensiveness_vs_random"] == pytest.approx(math.log(0.2 / 0.2))
    assert f["soft_nc_vs_random"] == pytest.approx(math.log(0.3 / 0.3))
    assert f["hard_sufficiency_vs_random"] == pytest.approx(math.log((1 - 0.8) / (1 - 0.8)))
    assert f["per_target"][1]["s0"] == 0.1 and "soft_ns_vs_random" in f and "nope" not in f
    with pytest.raises(KeyError, match="no faithfulness metric 'nope'"):
        f["nope"]


@pytest.mark.parametrize("change", [
    {"source_ids": [1, 2]}, {"target_ids": [1, 2]}, {"target_positions": [3, 3]}, {"source_tokens": ["a", "b"]},
    {"target_tokens": []},
])
def test_list_lengths_are_checked_by_the_base(change):
    import dataclasses

    with pytest.raises(ValueError, match=f"TokenAttribution.{next(iter(change))}: has length"):
        dataclasses.replace(_attribution(), **change)


def test_list_lengths_of_lists_without_tensors_and_nested_lists():
    from interp.lens.evaluate import HitRate
    from interp.subnetworks.predictions import TokenPredictions

    HitRate(2, 5, 0.5, 0.25, ["a", "b"], [True, False], [False, False])
    with pytest.raises(ValueError, match=r"HitRate.logit_hits: has length 1 but another field has 'word' = 2"):
        HitRate(2, 5, 0.5, 0.25, ["a", "b"], [True, False], [False])
    ok = dict(model="m", tokens=["a", "b"], next_tokens=["b", ""], sources=["full"], top=[["x", "y"]],
              top_prob=torch.zeros(1, 2), prob_actual=torch.zeros(1, 2))
    TokenPredictions(**ok)
    with pytest.raises(ValueError, match="TokenPredictions.top: the lists at depth 1 have different lengths"):
        TokenPredictions(**{**ok, "sources": ["full", "sub"], "top": [["x", "y"], ["x"]], "top_prob": torch.zeros(2, 2),
                            "prob_actual": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="TokenPredictions.top"):
        TokenPredictions(**{**ok, "top": [["x", "y", "z"]]})
    with pytest.raises(ValueError, match=r"TokenPredictions.next_tokens must have shape \[pos\], got NoneType"):
        TokenPredictions(**{**ok, "next_tokens": None})
