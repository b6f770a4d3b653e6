"""Qwen2.5-Coder-0.5B-Instruct, the third real family (qwen2: 24 layers, d_model 896, 14 query / 2 key-value heads),
from its Q4_K_M GGUF in six wheels: load, logit lens, extreme-token scan, one attribution. Each check is cheap (one
short prompt or text); the first run in a fresh cache also converts the GGUF. Measured with one thread on a busy 2-core
machine (load average ~8): first load_model (assemble, convert, load, one forward) 4 min 44 s, 3.9 GB peak RSS; a
cached load 37 s (most of it checking the 2.5 GB float32 weights against their manifest), 0.7 GB RSS, 2.6 GB after
the first forward pass (the weights paged in); this file 1 min 30 s, 4.6 GB peak (a second, plain HF copy below).
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from interp import load_model
from interp.attribution import attribute
from interp.extreme.scan import scan
from interp.lens.logit import logit_lens
from interp.models import real

NAME = "qwen2.5-coder-0.5b"
CODE = "def add(a, b):\n    return"
FACT = "The capital of France is"


@pytest.fixture(scope="module")
def qwen():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # bits independent of the machine's core count; the prompts are short
    yield load_model(NAME, device="cpu")
    torch.set_num_threads(old)


def test_the_named_model_is_the_pinned_qwen2_and_its_folder_keeps_no_gguf_copy(qwen):
    assert real.is_installed(NAME)
    folder = real.real_model_folder(NAME)
    assert folder.name.startswith("qwen2.5-coder-0.5b-instruct-q4_k_m-" + real.REAL_MODELS[NAME].sha256[:16])
    assert not list(folder.glob("*.gguf"))
    cfg = qwen.cfg
    assert type(qwen.original_model).__name__ == "Qwen2ForCausalLM"
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_key_value_heads, cfg.d_vocab) == (24, 896, 14, 2, 151936)


@torch.no_grad()
def test_logits_equal_a_plain_hugging_face_load(qwen):
    """The bridge's logits against ``AutoModelForCausalLM`` loaded from the same folder on its own (HF's default
    attention kernel, sdpa, where the bridge runs eager; no hooks). Both are float32 runs of the same weights, so only
    the order of floating-point operations differs. Measured: max |difference| 8.6e-6 (code) and 1.2e-5 (fact) on
    logits up to 21.7 in size. atol 1e-3 is ~100x that, while a wrong weight (a swapped head, a missing bias) moves
    logits by whole units. The greedy continuation must be the same token, and the one the model is known for.
    """
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(real.real_model_folder(NAME)), dtype=torch.float32).eval()
    for prompt in (CODE, FACT):
        ids = qwen.to_tokens(prompt)
        ours, theirs = qwen(ids), hf(ids).logits
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3)
        assert int(ours[0, -1].argmax()) == int(theirs[0, -1].argmax())
    del hf
    p = qwen(qwen.to_tokens(CODE))[0, -1].softmax(-1)
    assert qwen.tokenizer.decode(int(p.argmax())) == " a"  # "return a + b"


@torch.no_grad()
def test_logit_lens_answer_emerges_in_the_last_layers(qwen):
    """The last lens row is the model's own distribution, and the answer is top-1 only near the end.

    Measured: " a" (code) and " Paris" (fact) are top-1 from row 22 of the 25 rows (0 = embeddings, 24 = output) and
    ranked 151,284 and 58,609 at row 12. Asked: top-1 at the output, first top-1 row in the last quarter, rank > 10 at
    the middle row.
    """
    n = qwen.cfg.n_layers
    r = logit_lens(qwen, CODE, target=" a", keep_logprobs=True)
    want = torch.log_softmax(qwen(qwen.to_tokens(CODE))[0].float(), -1)
    torch.testing.assert_close(r.logprobs[-1], want, rtol=0, atol=1e-4)  # same tensor, same final norm: rounding only
    for prompt, answer in ((CODE, " a"), (FACT, " Paris")):
        rank = logit_lens(qwen, prompt, target=answer).target_rank[:, -1]
        assert int(rank[-1]) == 1, (prompt, rank.tolist())
        first = int((rank == 1).nonzero().min())
        assert first >= 0.75 * n and int(rank[n // 2]) > 10, (prompt, rank.tolist())


def test_scan_finds_the_massive_activation_at_the_first_token(qwen):
    """Sun et al. 2024 (Qwen among the models): one fixed dimension of the first token's hidden state is huge from an
    early layer on. Measured on a 6-line code text: 28 events, 18 of them at (position 0, dimension 62), |a| ~890 in
    layers 3-20 while the layers' median |a| is 0.1-0.8. Asked: the most common (position, dimension) is at position 0,
    and the layer's top |a| is over 100x its median in at least a third of the layers, in one run of layers.
    """
    text = "import os\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n"
    with torch.no_grad():
        rep = scan(qwen, [text], progress=False)
    assert rep.n_massive > 0
    (pos, _dim), count = Counter((e[2], e[3]) for e in rep.massive).most_common(1)[0]
    assert pos == 0 and count >= 0.5 * len(rep.massive)
    big = (rep.top_abs > 100 * rep.median_abs).nonzero().flatten().tolist()
    assert len(big) >= qwen.cfg.n_layers // 3 and big == list(range(big[0], big[-1] + 1)), big


def test_gradient_norm_is_the_norm_of_hugging_faces_gradient(qwen):
    """Gradient-norm attribution of " a" after the code prompt equals, per prompt token, the L2 norm of the gradient of
    log p(" a") with respect to the input embeddings computed by the plain HF module (no hooks). Both are float32
    backward passes of the same graph; the norms are ~0.01-0.1, and rtol 1e-3 covers the reordering of sums while a
    hook in the wrong place (or a gradient through the wrong position) changes them entirely.
    """
    a = attribute(qwen, CODE, " a", method="gradient_norm")
    assert a.target_tokens == [" a"] and a.scores.shape == (1, len(a.source_tokens))
    hf = qwen.original_model
    ids = torch.cat([qwen.to_tokens(CODE)[0], torch.tensor(qwen.tokenizer.encode(" a", add_special_tokens=False))])
    emb = hf.get_input_embeddings()(ids[None, :-1]).detach().requires_grad_(True)
    with torch.enable_grad():
        lp = torch.log_softmax(hf(inputs_embeds=emb).logits[0, -1].float(), -1)[ids[-1]]
        (grad,) = torch.autograd.grad(lp, emb)
    torch.testing.assert_close(a.scores[0], grad[0].norm(dim=-1), rtol=1e-3, atol=1e-6)
    assert bool((a.scores >= 0).all()) and float(a.scores.max()) > 0
