"""Unit tests of interp.subnetworks on random-weight models of three families (GPT-2, Llama, NeoX).

Validity against planted ground truth: the masked forward equals a model whose weights were multiplied
by the mask (a deep copy), the bigram table equals hand counts, the overlap null has its exact mean.
"""

from __future__ import annotations

import copy

import pytest
import torch

from interp.errors import InterpError
from interp.subnetworks import (
    BigramTable,
    Subnetwork,
    bigram_table,
    find_bigram_subnetwork,
    find_maskable,
    find_pruned_subnetwork,
    overlap,
)
from interp.subnetworks.masking import masked_forward

FAMILY_COMPONENTS = {
    "gpt2": {"Q", "K", "V", "O", "MLP in", "MLP out"},
    "llama": {"Q", "K", "V", "O", "MLP in", "MLP out"},
    "neox": {"Q", "K", "V", "O", "MLP in", "MLP out"},
}


pytestmark = pytest.mark.usefixtures("one_thread_module")


TEXTS = ["the cat sat on a mat.", "a dog ran in the park!", "is it a cat, or a dog?", "the sun is hot."] * 3


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_unchanged(model, snap) -> None:
    now = dict(model.named_parameters())
    assert now.keys() == snap.keys()
    for n, p in now.items():
        assert torch.equal(p.detach(), snap[n]), f"{n} changed"  # bit for bit


def _random_masks(model, p: float = 0.5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {w.name: torch.rand(w.shape, generator=g) < p for w in find_maskable(model)}


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_maskable_matrices_by_family(random_models, family):
    model = random_models[family]
    ws = find_maskable(model)
    assert {w.component for w in ws} == FAMILY_COMPONENTS[family]
    assert {w.layer for w in ws} == set(range(model.cfg.n_layers))
    names = " ".join(w.short for w in ws)
    for never in ("wte", "wpe", "embed", "lm_head", "norm", "ln_", "bias", "qkv"):
        assert never not in names
    # every maskable matrix is used by the forward pass: zeroing it changes the logits
    toks = torch.tensor([[1, 5, 9, 3, 7, 2]])
    params = dict(model.named_parameters())
    with torch.no_grad():
        base = model(toks)
        for w in ws:
            out = masked_forward(model, toks, {w.name: torch.zeros_like(params[w.name])})
            assert (out - base).abs().max() > 1e-6, f"{w.short} does not affect the output"


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_masked_forward_equals_weight_masked_copy(random_models, family):
    model = random_models[family]
    snap = _snapshot(model)
    sub = Subnetwork.from_masks(model, _random_masks(model))
    with torch.no_grad():  # the bridge keeps the last attention pattern; a grad-free pass makes the model deep-copyable
        model(torch.tensor([[1, 2]]))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        refp = dict(ref.named_parameters())
        for w in sub.weights:
            refp[w.name].mul_(sub.masks[w.name])
    toks = torch.tensor([[1, 5, 9, 3, 7, 2, 4, 4]])
    with torch.no_grad():
        want = ref(toks)
        with sub.only(model):
            got = model(toks)
        # same op order (W * mask) on both sides: float32 results agree to rounding only
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
        assert torch.allclose(masked_forward(model, toks, sub.masked_weights(model)), want, atol=1e-5, rtol=1e-5)
        # all-ones mask = the full model, exactly
        full = Subnetwork.from_masks(model, {w.name: torch.ones(w.shape, dtype=torch.bool) for w in sub.weights})
        with full.only(model):
            ones = model(toks)
        assert torch.equal(ones, model(toks))
    _assert_unchanged(model, snap)


def test_context_managers_restore_weights_even_on_error(random_models):
    model = random_models["gpt2"]
    snap = _snapshot(model)
    toks = torch.tensor([[1, 2, 3, 4]])
    base = model(toks).detach()
    sub = Subnetwork.from_masks(model, _random_masks(model, 0.3))
    for ctx in (sub.only(model), sub.ablated(model), sub.random(model, seed=1), sub.random_ablated(model)):
        with pytest.raises(RuntimeError):
            with ctx:
                assert not torch.equal(model(toks), base)
                raise RuntimeError("boom")
        assert torch.equal(model(toks).detach(), base)
    _assert_unchanged(model, snap)


def test_random_and_complement_controls(random_models):
    model = random_models["llama"]
    sub = Subnetwork.from_masks(model, _random_masks(model, 0.2))
    rnd = sub.random_like(seed=3)
    comp = sub.complement()
    for w in sub.weights:
        assert int(rnd.masks[w.name].sum()) == int(sub.masks[w.name].sum())  # same per-matrix size
        assert not torch.equal(rnd.masks[w.name], sub.masks[w.name])
        assert not (comp.masks[w.name] & sub.masks[w.name]).any()
        assert (comp.masks[w.name] | sub.masks[w.name]).all()
    assert sub.n_kept + comp.n_kept == sub.n_maskable
    assert abs(sub.kept_fraction - 0.2) < 0.02  # 0.2 Bernoulli over ~50k entries: sd ~0.002


def test_bigram_table_counts_and_backoff(random_models):
    model = random_models["gpt2"]
    table = bigram_table(model, ["abab", "ba"])
    bos = model.tokenizer.bos_token_id
    a, b, c = (model.tokenizer.convert_tokens_to_ids(x) for x in "abc")
    # pairs: bos-a, a-b, b-a, a-b | bos-b, b-a  -> P(b|a)=1, P(a|b)=1, P(a|bos)=P(b|bos)=1/2
    rows = table.rows(torch.tensor([a, b, bos, c]))
    assert rows[0, b] == 1 and rows[1, a] == 1
    assert rows[2, a] == 0.5 and rows[2, b] == 0.5
    # c never seen as a context: unigram of next tokens (a: 3, b: 3 of 6)
    assert rows[3, a] == 0.5 and rows[3, b] == 0.5
    assert torch.allclose(rows.sum(-1), torch.ones(4))
    empty = BigramTable.from_sequences([torch.tensor([a, a])], table.vocab)
    assert empty.rows(torch.tensor([b]))[0, a] == 1.0
    with pytest.raises(InterpError):
        bigram_table(model, "not a list")
    with pytest.raises(InterpError):
        bigram_table(model, [])


def test_training_never_changes_weights_and_masks_zero_weights(random_models, tmp_path):
    model = random_models["neox"]
    snap = _snapshot(model)
    name = find_maskable(model)[0].name
    # plant exact zeros in a copy of the model: they must never be kept
    with torch.no_grad():
        model(torch.tensor([[1, 2]]))
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        dict(zeroed.named_parameters())[name][:3].zero_()
    sub = find_bigram_subnetwork(zeroed, TEXTS, lam=0.0, steps=8, lr=0.05, batch_size=4, progress=False)
    assert not sub.masks[name][:3].any()
    sub2 = find_bigram_subnetwork(model, TEXTS, lam=1.0, steps=8, lr=0.05, batch_size=4, progress=False)
    pruned = find_pruned_subnetwork(model, TEXTS, lam=1.0, steps=5, lr=0.05, batch_size=4, progress=False)
    assert sub2.target == "bigram" and pruned.target == "model" and len(sub2.log) >= 1
    assert all(p.grad is None for p in model.parameters())
    _assert_unchanged(model, snap)  # bit for bit after training
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_lambda_orders_kept_fraction(random_models):
    # A-T4: stronger sparsity keeps fewer entries; lam = 0 keeps (almost) everything a CE gradient does not push out
    model = random_models["gpt2"]
    kw = dict(steps=20, lr=0.05, batch_size=4, beta_growth=1.1, progress=False)
    k0 = find_bigram_subnetwork(model, TEXTS, lam=0.0, **kw).kept_fraction
    k10 = find_bigram_subnetwork(model, TEXTS, lam=10.0, **kw).kept_fraction
    k1000 = find_bigram_subnetwork(model, TEXTS, lam=1000.0, **kw).kept_fraction
    assert k0 > k10 > k1000


def test_save_load_roundtrip_and_wrong_model(random_models, tmp_path):
    model = random_models["gpt2"]
    sub = Subnetwork.from_masks(model, _random_masks(model, 0.1))
    sub = Subnetwork(sub.weights, sub.masks, sub.signature, "bigram", bigram_table(model, TEXTS), {"lam": 1.0}, [])
    path = sub.save(tmp_path / "sub.safetensors")
    back = Subnetwork.load(path, model)
    assert back.kept_table() == sub.kept_table() and back.config == {"lam": 1.0}
    assert all(torch.equal(back.masks[k], sub.masks[k]) for k in sub.masks)
    assert torch.equal(back.bigram.rows(torch.arange(5)), sub.bigram.rows(torch.arange(5)))
    with pytest.raises(InterpError, match="another model"):
        Subnetwork.load(path, random_models["llama"])
    with pytest.raises(InterpError):
        with back.only(random_models["neox"]):
            pass
    with pytest.raises(InterpError):
        Subnetwork.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_text("not a file")
    with pytest.raises(InterpError):
        Subnetwork.load(tmp_path / "junk.safetensors")


def test_sparse_masks_are_stored_as_kept_indices(random_models, tmp_path):
    """A sparse mask is written as int32 kept indices (small files for 100M-entry models), a dense one as bools;
    both read back to the same masks, and indices outside a matrix are refused as a damaged file."""
    from safetensors.torch import load_file, save_file

    model = random_models["llama"]
    masks = _random_masks(model, 0.02, seed=3)
    first = find_maskable(model)[0].name
    masks[first] = torch.rand(masks[first].shape, generator=torch.Generator().manual_seed(4)) < 0.6  # dense one
    sub = Subnetwork.from_masks(model, masks)
    path = sub.save(tmp_path / "sparse.safetensors")
    stored = load_file(str(path))
    assert stored[f"mask.{first}"].dtype == torch.bool
    sparse = [k for k in stored if k.startswith("kept.")]
    assert len(sparse) == len(masks) - 1 and all(stored[k].dtype == torch.int32 for k in sparse)
    back = Subnetwork.load(path, model)
    assert all(torch.equal(back.masks[k], sub.masks[k]) for k in sub.masks)
    assert back.n_kept == sub.n_kept
    key = sparse[0]
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    stored[key] = torch.tensor([0, 10**9], dtype=torch.int32)
    save_file(stored, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(InterpError):
        Subnetwork.load(tmp_path / "bad.safetensors")


def test_overlap_null_has_exact_mean(random_models):
    # A-T7: the null mean equals sum_m n_m rho_A rho_B / N. 4000 draws: the sd of the mean is null_std/63, so 5 sd.
    model = random_models["gpt2"]
    a = Subnetwork.from_masks(model, _random_masks(model, 0.3, seed=1))
    b = Subnetwork.from_masks(model, _random_masks(model, 0.1, seed=2))
    ov = overlap(a, b, n_null=4000)
    assert abs(ov.null_mean - ov.expected) < 5 * ov.null_std / 63 + 1e-9
    assert ov.p_value > 0.01  # independent masks: no excess overlap
    same = overlap(a, a, n_null=500)
    assert same.of_a == 1.0 and same.p_value < 0.01


def test_explorer_widget_and_report_section(random_models, tmp_path):
    from interp.report import Report
    from interp.report.sections.subnetworks import add_to_report
    from widgets.subnetworks import SubnetworkExplorer

    model = random_models["gpt2"]
    sub = Subnetwork.from_masks(model, _random_masks(model, 0.05))
    sub = Subnetwork(sub.weights, sub.masks, sub.signature, "bigram", bigram_table(model, TEXTS), {"lam": 1.0}, [])
    w = SubnetworkExplorer(model, sub, prompt="the cat sat", texts=TEXTS[:4])
    assert w.error.layout.display == "none" and w.preds is not None
    assert w.preds.sources == ["full", "subnetwork", "bigram"] and len(w.preds.tokens) == w.preds.top_prob.shape[1]
    assert w.run(w.evaluate) and w.ev is not None and set(w.ev.variants) >= {"full", "complement"}
    assert w.export(tmp_path / "w.html").stat().st_size > 0
    report = Report("t")
    add_to_report(report, model, "the cat sat")  # no subnetwork option: nothing added
    assert report.sections == []
    path = sub.save(tmp_path / "s.safetensors")
    add_to_report(report, model, "the cat sat", subnetwork=str(path))
    assert [s.title for s in report.sections] == ["Bigram subnetwork"]
