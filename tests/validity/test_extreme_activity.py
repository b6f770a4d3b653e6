"""Head activity, per-token probe, ReLU attention and the SinkExplorer widget, on random-weight models with planted heads."""

from __future__ import annotations

import tempfile

import pytest
import torch

from interp.errors import InterpError
from interp.extreme.activity import HeadActivity, _domain_rows, _Run, head_activity
from interp.extreme.probe import token_probe

DOMAINS = {"one": ["hello world, this is a small test", "more text here, fine"], "two": ["zzz yyy xxx www vvv uuu"]}


def _planted_dormant(head: int):
    """Layer-0 head ``head`` attends only to the first token, whose value is zero: a sink with no effect (dormant)."""
    def pattern(p, hook):
        p = p.clone()
        p[:, head] = 0.0
        p[:, head, :, 0] = 1.0
        return p

    def value(v, hook):
        v = v.clone()
        v[:, 0, head] = 0.0
        return v

    return [("blocks.0.attn.hook_pattern", pattern), ("blocks.0.attn.hook_v", value)]


def test_planted_dormant_head_is_dormant_others_active(random_models):
    model = random_models["gpt2"]
    with model.hooks(fwd_hooks=_planted_dormant(2)):
        act = head_activity(model, DOMAINS, progress=False)
    assert act.sink[:, 0, 2].tolist() == pytest.approx([1.0, 1.0])
    # its output is exactly zero, so both interventions leave the loss unchanged up to float32 noise (1e-5 nats)
    assert act.dloss_zero[:, 0, 2].abs().max() < 1e-5 and act.dloss_bos[:, 0, 2].abs().max() < 1e-5
    assert act.dormant[:, 0, 2].all()
    dormant = act.dormant.clone()
    dormant[:, 0, 2] = False
    assert not dormant.any()  # random heads attend ~uniformly (sink ~0.1 < 0.3): all active
    # zeroing a random head changes the loss (it is not a no-op): some head moves it
    assert act.dloss_zero.abs().max() > 1e-4


def _reference_dloss(model, texts) -> tuple[torch.Tensor, torch.Tensor]:
    """The unbatched algorithm (the code before stacking): one forward pass per (head, intervention)."""
    rows, masks = _domain_rows(model, texts, None)
    run = _Run(model, rows, masks, 16)
    with torch.no_grad():
        clean = run.loss([])
    n_l, n_h = model.cfg.n_layers, model.cfg.n_heads
    dz, db = torch.zeros(n_l, n_h), torch.zeros(n_l, n_h)

    def zero(head):
        def fn(z, q):
            z = z.clone()
            z[:, :, head] = z[:, :, head] * (~q)[..., None].to(z.dtype)
            return z
        return fn

    def to_first(head):
        def fn(p, q):
            p = p.clone()
            row = torch.zeros_like(p[:, head])
            row[..., 0] = 1.0
            p[:, head] = torch.where(q[:, :, None], row, p[:, head])
            return p
        return fn

    with torch.no_grad():
        for layer in range(n_l):
            for head in range(n_h):
                dz[layer, head] = run.loss([(f"blocks.{layer}.attn.hook_z", zero(head))]) - clean
                db[layer, head] = run.loss([(f"blocks.{layer}.attn.hook_pattern", to_first(head))]) - clean
    return dz, db


@pytest.mark.parametrize("name", ["stories", "gpt2", "llama"])
def test_stacked_interventions_equal_one_pass_each(name, stories, random_models):
    """Stacked copies (several chunks, the last one partial) give the per-intervention loss changes of the unbatched loop.

    Tolerance 1e-5 nats: the two differ only in float32 rounding of matmuls over another batch size (observed at most
    1.2e-7 on stories and the random llama); the changes compared reach 0.4-0.7 nats on stories.
    """
    model = stories if name == "stories" else random_models[name]
    texts = ["one day mia found a key in the garden .", "then tom took the red ball home ."]
    ref_z, ref_b = _reference_dloss(model, texts)
    # 2 texts of ~10 tokens: 64 tokens per pass = 3 copies, so the jobs split into several chunks with a partial last one
    act = head_activity(model, {"d": texts}, max_batch_tokens=64, progress=False)
    assert act.measured.all()
    assert torch.allclose(act.dloss_zero[0], ref_z, atol=1e-5, rtol=0)
    assert torch.allclose(act.dloss_bos[0], ref_b, atol=1e-5, rtol=0)
    assert ref_z.abs().max() > 1e-3  # the comparison is not between zeros


def test_heads_option_limits_interventions(random_models):
    """heads=N intervenes on the N heads whose sink score differs most across domains; the rest are NaN (unmeasured)."""
    model = random_models["gpt2"]
    full = head_activity(model, DOMAINS, progress=False)
    some = head_activity(model, DOMAINS, heads=3, progress=False)
    spread = (full.sink.amax(0) - full.sink.amin(0)).flatten()
    top = set(spread.argsort(descending=True)[:3].tolist())
    assert set(some.measured[0].flatten().nonzero().flatten().tolist()) == top and int(some.measured.sum()) == 2 * 3
    m = some.measured
    assert torch.allclose(some.dloss_zero[m], full.dloss_zero[m], atol=1e-5, rtol=0)
    listed = head_activity(model, DOMAINS, heads=[(1, 0)], progress=False)
    assert listed.measured[:, 1, 0].all() and int(listed.measured.sum()) == 2
    assert "measured" in listed.summary()["one"]
    with pytest.raises(InterpError, match="outside"):
        head_activity(model, DOMAINS, heads=[(99, 0)], progress=False)


def test_query_mask_domains_and_roundtrip(random_models, tmp_path):
    """A domain given as (ids, mask) only scores the masked queries; forcing attention to key 0 at them raises sink to 1."""
    model = random_models["gpt2"]
    ids = torch.randint(0, 30, (4, 24))
    ids[:, 0] = model.tokenizer.bos_token_id
    even = torch.zeros_like(ids, dtype=torch.bool)
    even[:, ::2] = True

    def plant(p, hook):  # head 1 sinks at even queries only
        p = p.clone()
        q = torch.arange(p.shape[-2]) % 2 == 0
        p[:, 1, q] = 0.0
        p[:, 1, q, 0] = 1.0
        return p

    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", plant)]):
        act = head_activity(model, {"even": (ids, even), "odd": (ids, ~even)}, interventions=False, progress=False)
    assert act.sink[0, 1, 1] == pytest.approx(1.0) and act.sink[1, 1, 1] < 0.3
    assert act.n_queries == [4 * 11, 4 * 12]  # position 0 is never a query
    assert torch.isnan(act.dloss_zero).all()
    back = HeadActivity.load(act.save(tmp_path / "a.safetensors"))
    assert torch.equal(back.sink, act.sink) and back.domains == ["even", "odd"]
    with pytest.raises(InterpError, match="no domains"):
        head_activity(model, {}, progress=False)


def test_token_probe_planted(random_models):
    """A head that looks away from the first token only when the current token is 'z' is active on 'z' alone."""
    model = random_models["gpt2"]
    z = int(model.to_tokens("z")[0, -1])
    ctx = model.to_tokens("abc")[0]

    def plant(p, hook):
        p = p.clone()
        p[:, 0, -1] = 0.0
        p[:, 0, -1, 0] = 1.0
        wake = hook.ctx.get("ids")[:, -1] == z
        p[wake, 0, -1, 0] = 0.0
        p[wake, 0, -1, -1] = 1.0
        return p

    orig = model.run_with_hooks

    def run_with_hooks(ids, **kw):  # let the planted head see the current token ids of each probe batch
        model.blocks[0].attn.hook_pattern.ctx["ids"] = ids
        return orig(ids, **kw)

    model.run_with_hooks = run_with_hooks
    try:
        with model.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", plant)]):
            pr = token_probe(model, 0, 0, ctx, candidates=list(range(model.cfg.d_vocab)))
    finally:
        del model.run_with_hooks
    assert pr.active.tolist() == [c == z for c in range(model.cfg.d_vocab)]
    assert pr.first_attention[z] == 0.0 and pr.first_attention[(z + 1) % model.cfg.d_vocab] == 1.0


def test_relu_attention_survives_save_and_load():
    """A ReLU-attention zoo model reloaded through load_model: the bridge's hook_pattern shows ReLU(s)/i, equal to HF's."""
    from interp.models import load_model
    from interp.zoo.relu_attention import relu_pattern
    from interp.zoo.train import BBRecipe, build_bb_model

    torch.manual_seed(0)
    hf, tok = build_bb_model(BBRecipe(attention="relu"))
    hf.eval()
    d = tempfile.mkdtemp()
    hf.save_pretrained(d)
    tok.save_pretrained(d)
    bridge = load_model(d, device="cpu")
    x = torch.tensor([[64, 1, 2, 3, 4, 5, 6, 7]])
    with torch.no_grad():
        ref = hf(input_ids=x, output_attentions=True)
        logits, cache = bridge.run_with_cache(x)
    for layer in range(3):
        pat, scores = cache[f"blocks.{layer}.attn.hook_pattern"], cache[f"blocks.{layer}.attn.hook_attn_scores"]
        assert torch.allclose(pat, ref.attentions[layer], atol=1e-6)
        assert torch.allclose(pat, relu_pattern(scores), atol=1e-7)
        assert not torch.allclose(pat.sum(-1), torch.ones(1))  # rows are not normalised (softmax rows would sum to 1)
    assert torch.allclose(logits, ref.logits, atol=1e-5)


def test_sink_explorer_runs_and_exports(random_models, tmp_path):
    from widgets.extreme import SinkExplorer, parse_domains

    w = SinkExplorer(random_models["llama"], "hello world, this is a test", domains="a: hello there friend\nb: zzz yyy xx ww")
    assert w.error.layout.display == "none" and w.report is not None and len(w.fig_heat.data) == 1
    w.sink.value = 0.05
    assert w.report.thresholds["sink"] == 0.05
    assert w.run(w.compare) and w.activity.domains == ["a", "b"]
    assert w.export(tmp_path / "w.html").is_file()
    w.domains.value = "no colon here"
    assert not w.run(w.compare) and "name: some text" in w.error.value
    assert parse_domains("x: a\ny: b\nx: c") == {"x": ["a", "c"], "y": ["b"]}
