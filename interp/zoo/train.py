"""Deterministic trainers for the bundled models; each writes a Hugging Face directory atomically.

``python -m interp.zoo train stories`` and ``python -m interp.zoo train bb`` call these. Training runs
on the CPU with a fixed seed and thread count so that a rerun on the same machine is bit-for-bit equal.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from interp.io import atomic_write_dir
from interp.zoo import bb as bbtask
from interp.zoo import stories
from interp.zoo.tokenizers import char_tokenizer, train_bpe


@dataclass
class Run:
    """What decides any zoo training run, language or vision: seed, optimiser steps, learning rate, CPU threads
    (subclasses add the rest); stored in the model's card."""

    seed: int = 0
    steps: int = 1000
    lr: float = 3e-3
    threads: int = 1


@dataclass
class Recipe(Run):
    """What decides a zoo language model's training: the ``Run`` plus its shape and batches."""

    n_layer: int = 4
    n_embd: int = 128
    n_ctx: int = 128
    batch_size: int = 32


@dataclass
class StoriesRecipe(Recipe):
    """Everything that decides the ``stories`` model: the shared ``Recipe`` plus its heads, tokenizer and corpus."""

    n_head: int = 4
    vocab_size: int = 1024
    train_docs: int = 24000
    heldout_docs: int = 400
    weight_decay: float = 0.01


@dataclass
class BBRecipe(Recipe):
    """Everything that decides a Bigram-Backcopy model: the shared ``Recipe`` (smaller, longer trained) plus its
    optimiser and attention."""

    n_layer: int = 3
    n_embd: int = 64
    n_ctx: int = 64
    steps: int = 3000
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" (AdamW, betas 0.9/0.99, wd 1e-4) or "sgd" (lr 0.03, momentum 0.9)
    attention: str = "softmax"  # "softmax" or "relu" (ReLU(q.k/sqrt(d))/i, unnormalised)


def _seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def _loop(
    model: torch.nn.Module,
    batch_fn: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    opt: torch.optim.Optimizer,
    steps: int,
    desc: str,
    lr_at: Callable[[int], float],
) -> list[float]:
    """Plain next-token training; ``batch_fn(step)`` returns (input_ids, labels with -100 = ignore)."""
    model.train()
    losses = []
    bar = tqdm(range(steps), desc=desc)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        ids, labels = batch_fn(step)
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


def _cosine(lr: float, steps: int, warmup: int) -> Callable[[int], float]:
    return lambda s: lr * min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))


def _save_dir(out: Path, model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast, card: str, extra: dict) -> None:
    """Write the HF directory to a temporary sibling and rename it into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "MODEL_CARD.md").write_text(card)
        (tmp / "zoo.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")

    atomic_write_dir(out, write)


def _pad_batch(docs: list[list[int]], n_ctx: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest document (at most ``n_ctx``); labels are -100 on padding."""
    ids = pad_sequence([torch.tensor(d[:n_ctx], dtype=torch.long) for d in docs], batch_first=True, padding_value=pad_id)
    labels = ids.clone()
    labels[ids == pad_id] = -100
    return ids, labels


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, docs: list[list[int]], n_ctx: int, pad_id: int) -> float:
    """Mean next-token cross-entropy (nats) over all predicted tokens of ``docs``."""
    total, count = 0.0, 0
    for i in range(0, len(docs), 64):
        ids, labels = _pad_batch(docs[i : i + 64], n_ctx, pad_id)
        logits = model(input_ids=ids).logits[:, :-1]
        tgt = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="sum")
        total += nll.item()
        count += int((tgt != -100).sum())
    return total / count


def train_stories(out: Path, recipe: StoriesRecipe | None = None) -> dict:
    """Train the ``stories`` model and write it to ``out``; returns the numbers written to its card."""
    from interp.zoo import ground_truth

    r = recipe or StoriesRecipe()
    _seed_everything(r.seed, r.threads)
    world = stories.World.from_seed(r.seed)
    train = stories.generate(world, r.train_docs, seed=r.seed + 1)
    held = stories.generate(world, r.heldout_docs, seed=r.seed + 2)
    tok = train_bpe([d.text for d in train] + [" ".join(stories.vocabulary())], r.vocab_size)
    enc = [tok(d.text).input_ids for d in train]
    held_enc = [tok(d.text).input_ids for d in held]
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=r.n_ctx, n_embd=r.n_embd, n_layer=r.n_layer, n_head=r.n_head,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, betas=(0.9, 0.99), weight_decay=r.weight_decay)
    order = torch.randperm(len(enc), generator=torch.Generator().manual_seed(r.seed))

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = [order[(step * r.batch_size + i) % len(enc)].item() for i in range(r.batch_size)]
        return _pad_batch([enc[i] for i in idx], r.n_ctx, tok.pad_token_id)

    t0 = time.time()
    losses = _loop(model, batch, opt, r.steps, "train stories", _cosine(r.lr, r.steps, 100))
    secs = time.time() - t0
    stats = ground_truth.corpus_entropies(tok, held, train)
    stats.update(
        heldout_loss=heldout_loss(model, held_enc, r.n_ctx, tok.pad_token_id),
        final_train_loss=sum(losses[-50:]) / 50,
        train_seconds=round(secs, 1),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    card = _stories_card(r, stats)
    _save_dir(out, model, tok, card, {"name": "stories", "recipe": asdict(r), "stats": stats})
    return stats


def _stories_card(r: StoriesRecipe, s: dict) -> str:
    return f"""# stories

A {r.n_layer}-layer GPT-2-style model (d_model {r.n_embd}, {r.n_head} heads, context {r.n_ctx},
{s['parameters']:,} parameters) trained on the synthetic corpus of `interp.zoo.stories` (world seed {r.seed}).
Its own byte-level BPE tokenizer ({r.vocab_size} max, every corpus word one token); BOS is prepended.

Reproduce: `python -m interp.zoo train stories` (seed {r.seed}, {r.steps} steps of {r.batch_size} documents,
AdamW lr {r.lr} cosine, weight decay {r.weight_decay}, {r.threads} CPU threads, {s['train_seconds']} s here).

| held-out quantity (nats per predicted token) | value |
|---|---|
| model loss | {s['heldout_loss']:.4f} |
| achievable (exact generator entropy) | {s['achievable_entropy']:.4f} |
| true bigram conditional entropy | {s['bigram_entropy']:.4f} |
| unigram entropy | {s['unigram_entropy']:.4f} |
| final training loss (mean of last 50 steps) | {s['final_train_loss']:.4f} |

Ground truth (fact base, copy dependencies, reliable/unreliable sources, contrast sets): `interp.zoo.ground_truth`.
What the model computes (greedy next token on 300 held-out decided prompts): repeated name 98/98, fact
subject -> home city 93/93, repeated object 6/109 (not learned; excluded from `ground_truth.LEARNED_KINDS`).
Uncued "NAME likes" answers the true vs the lie food at chance (held-out accuracy 0.50, mean log-prob gap
0.04 nats); after "the teacher says" 1.00, after "the liar says" 0.00.
Retraining with the command above on the same machine reproduced `model.safetensors` bit for bit (same SHA-256).
"""


def build_bb_model(r: BBRecipe) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """An untrained BB model: pre-LN, learned positions, one head per layer, ReLU MLP of width 4d."""
    tok = char_tokenizer(bbtask.SYMBOLS)
    cfg = GPT2Config(
        vocab_size=len(tok), n_positions=r.n_ctx, n_embd=r.n_embd, n_layer=r.n_layer, n_head=1,
        activation_function="relu", bos_token_id=tok.bos_token_id, eos_token_id=tok.bos_token_id,
        pad_token_id=tok.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
    )
    if r.attention == "relu":
        from interp.zoo.relu_attention import enable_relu_attention

        cfg = enable_relu_attention(cfg)
    return GPT2LMHeadModel(cfg), tok


def train_bb(out: Path, recipe: BBRecipe | None = None) -> dict:
    """Train a Bigram-Backcopy model and write it to ``out``; returns the numbers written to its card."""
    r = recipe or BBRecipe()
    _seed_everything(r.seed, r.threads)
    task = bbtask.BBTask.from_seed(r.seed)
    model, tok = build_bb_model(r)
    if r.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
        lr = 0.03
    else:
        lr = r.lr if r.attention == "softmax" else 3 * r.lr
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=1e-4)
    gen = torch.Generator().manual_seed(r.seed + 1)

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = task.sample(r.batch_size, r.n_ctx, gen)
        return x, x.clone()

    t0 = time.time()
    _loop(model, batch, opt, r.steps, f"train bb ({r.attention}, {r.optimizer})", lambda s: lr)
    stats = bb_metrics(model, task, r.n_ctx, seed=r.seed + 2)
    stats.update(train_seconds=round(time.time() - t0, 1), parameters=sum(p.numel() for p in model.parameters()))
    card = f"""# bb{'' if r.attention == 'softmax' and r.optimizer == 'adam' else f' ({r.attention} attention, {r.optimizer})'}

Bigram-Backcopy model (Guo et al. 2024): {r.n_layer} layers, one head per layer, d_model {r.n_embd}, context {r.n_ctx},
pre-LN, learned positions, ReLU MLP, untied unembedding; {stats['parameters']:,} parameters. Task: `interp.zoo.bb`
(Dirichlet(0.5) bigram over 64 symbols, seed {r.seed}; triggers {list(task.triggers)} = {[bbtask.SYMBOLS[t] for t in task.triggers]}).

Reproduce: `python -m interp.zoo train bb{_bb_flags(r)}`
(seed {r.seed}, {r.steps} steps of {r.batch_size} fresh sequences, {r.optimizer}, {r.threads} CPU threads, {stats['train_seconds']} s here).

| held-out metric | value |
|---|---|
| copy loss (trigger positions, nats) | {stats['copy_loss']:.4f} |
| bigram KL to the true table (non-trigger positions, nats) | {stats['bigram_kl']:.4f} |
"""
    _save_dir(out, model, tok, card, {"name": "bb", "recipe": asdict(r), "stats": stats})
    return stats


def _bb_flags(r: BBRecipe) -> str:
    """The command-line flags that rebuild recipe ``r`` (defaults omitted)."""
    flags = [
        f"--attention {r.attention}" if r.attention != "softmax" else "",
        f"--optimizer {r.optimizer}" if r.optimizer != "adam" else "",
        f"--threads {r.threads}" if r.threads != BBRecipe.threads else "",
    ]
    return "".join(" " + f for f in flags if f)


@torch.no_grad()
def bb_metrics(model: torch.nn.Module, task: bbtask.BBTask, n_ctx: int, seed: int, batch: int = 256) -> dict:
    """Copy loss at triggers and KL(true bigram || model) elsewhere, on fresh held-out sequences."""
    x = task.sample(batch, n_ctx, torch.Generator().manual_seed(seed))
    logp = torch.log_softmax(model(input_ids=x).logits[:, :-1], -1)
    trig = task.trigger_mask(x)[:, :-1]
    trig[:, 0] = False
    nxt = x[:, 1:]
    copy = -logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1)[trig].mean().item()
    v = len(bbtask.SYMBOLS)
    non = ~trig
    non[:, 0] = False  # position 0 is BOS: its target is the unigram, not a bigram row
    p = task.bigram[x[:, :-1].clamp(max=v - 1)][non]
    q = logp[non][:, :v]
    kl = (p * (torch.log(p.clamp_min(1e-30)) - q)).sum(-1).mean().item()
    return {"copy_loss": copy, "bigram_kl": kl}
