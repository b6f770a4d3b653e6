"""Continuous-sparsification mask training (Chang & Bergen 2025, via NeuroSurgeon's recipe).

One real logit ``m`` per entry of every maskable matrix, initialised at 0 (``-1e6`` where the weight is
exactly 0, so a zero weight is never kept). Training uses the soft mask ``sigmoid(beta * m)`` with
``beta`` multiplied by ``beta_growth`` after every step, and minimises

    soft-label cross-entropy(target distribution, masked model) + lam * mean(sigmoid(beta * m))

with AdamW on the logits only (the model's parameters are frozen, never written). The target is either
the bigram distribution P(. | current token) at every position (``find_bigram_subnetwork``) or the
unmasked model's own next-token distribution (``find_pruned_subnetwork``, the paper's "optimal pruning").
Training stops early when fewer than ``stop_fraction`` x #kept entries are undecided
(sigmoid in [0.1, 0.9]). The final binary mask is ``m > 0``.

Defaults differ from the paper (lr 5e-5, beta x1.001, up to 15k steps of 32 sequences) so that a
CPU run on a small model finishes in minutes: lr 5e-3, beta x1.005, 1500 steps of 16 sequences.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.models import pad_right
from interp.subnetworks.bigram import BigramTable, bigram_table, encode_texts
from interp.subnetworks.maskable import find_maskable
from interp.subnetworks.masking import frozen_parameters, masked_forward
from interp.subnetworks.subnetwork import Subnetwork, model_signature
from interp.validate import NonNegativeFloat, PositiveInt, Seed, checks_options

__all__ = ["find_bigram_subnetwork", "find_pruned_subnetwork", "train_mask", "pad_batch"]


def pad_batch(seqs: Sequence[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences: returns ([batch, pos] ids, [batch, pos - 1] bool, True where a next token exists)."""
    ids, mask = pad_right(seqs, pad_id)
    return ids, mask[:, 1:].contiguous()


def _batches(seqs: list[torch.Tensor], batch_size: int, seed: int):
    """Endless stream of batches; each epoch visits the sequences in a new seeded order."""
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            extra = list(range(len(seqs)))
            rng.shuffle(extra)
            order += extra
        take, order = order[:batch_size], order[batch_size:]
        yield pad_batch([seqs[i] for i in take])


@checks_options()
def train_mask(
    model,
    seqs: list[torch.Tensor],
    target_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    target: str,
    lam: NonNegativeFloat = 10.0,
    steps: PositiveInt = 1500,
    lr: float = 5e-3,
    batch_size: PositiveInt = 16,
    beta_growth: float = 1.005,
    stop_fraction: NonNegativeFloat = 0.01,
    maskable=None,
    seed: Seed = 0,
    progress: bool = True,
    bigram: BigramTable | None = None,
    callback: Callable[[int, dict], None] | None = None,
) -> Subnetwork:
    """Train mask logits so the masked model matches ``target_fn``; returns the binary ``Subnetwork`` (m > 0).

    ``target_fn(ids [b, pos], valid [b, pos-1], logits_full_or_None) -> [n_valid, vocab]`` target probabilities
    for the valid positions (row-major order). ``callback(step, row)`` is called with every logged row.
    Ctrl-C stops training early and returns the masks reached so far. A misspelt option, a wrong type or a
    count below 1 raises ``InterpError`` naming the option.
    """
    weights = find_maskable(model, maskable)
    params = dict(model.named_parameters())
    device = params[weights[0].name].device
    torch.manual_seed(seed)
    base = {w.name: params[w.name].detach() for w in weights}
    before = {k: v.clone() for k, v in base.items()}
    logits = {
        w.name: torch.where(base[w.name] == 0, torch.full_like(base[w.name], -1e6), torch.zeros_like(base[w.name]))
        .float().requires_grad_(True)
        for w in weights
    }
    n_total = sum(w.numel for w in weights)
    opt = torch.optim.AdamW(list(logits.values()), lr=lr)
    beta = 1.0
    log: list[dict[str, float]] = []
    stream = _batches(seqs, batch_size, seed)
    need_full = target == "model"
    step = 0
    stopped = "steps"
    torch.set_flush_denormal(True)  # sigmoid(beta*m) underflows to denormals: ~10x slower CPU steps without this
    bar = tqdm(range(steps), desc=f"{target} subnetwork", disable=not progress)
    try:
        with frozen_parameters(model):
            model_was_training = model.training
            model.eval()
            for step in bar:
                ids, valid = next(stream)
                ids, valid = ids.to(device), valid.to(device)
                full = None
                if need_full:
                    with torch.no_grad():
                        full = model(ids)
                masked = {k: base[k] * torch.sigmoid(beta * m).to(base[k].dtype) for k, m in logits.items()}
                out = masked_forward(model, ids, masked)[:, :-1][valid]
                tgt = target_fn(ids, valid, full).to(out.device)
                ce = -(tgt * torch.log_softmax(out.float(), -1)).sum(-1).mean()
                soft = sum(torch.sigmoid(beta * m).sum() for m in logits.values()) / n_total
                loss = ce + lam * soft
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                beta *= beta_growth
                if step % 10 == 0 or step == steps - 1:
                    with torch.no_grad():
                        s = [torch.sigmoid(beta * m) for m in logits.values()]
                        kept_soft = sum(int((x > 0.9).sum()) for x in s)
                        undecided = sum(int(((x >= 0.1) & (x <= 0.9)).sum()) for x in s)
                        kept = sum(int((m > 0).sum()) for m in logits.values()) / n_total
                    row = {"step": step, "loss": loss.item(), "ce": ce.item(), "kept": kept, "beta": beta,
                           "undecided": undecided / n_total}
                    log.append(row)
                    if callback:
                        callback(step, row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", ce=f"{row['ce']:.3f}", kept=f"{100 * kept:.2f}%")
                    if step > 0 and undecided < stop_fraction * max(kept_soft, 1):
                        stopped = "undecided"
                        break
            model.train(model_was_training)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        torch.set_flush_denormal(False)
    for k, v in base.items():  # the base weights are read only; make sure (cheap) and fail loudly otherwise
        if not torch.equal(v, before[k]):
            raise RuntimeError(f"mask training changed the weight {k}; this is a bug")
    masks = {k: (m.detach() > 0).cpu() for k, m in logits.items()}
    config = {"lam": lam, "lr": lr, "steps": steps, "steps_run": step + 1, "batch_size": batch_size,
              "beta_growth": beta_growth, "final_beta": beta, "stop_fraction": stop_fraction, "stopped": stopped,
              "seed": seed, "n_sequences": len(seqs)}
    return Subnetwork(weights, masks, model_signature(model), target, bigram, config, log)


@checks_options(forwards=train_mask, exclude=("target", "bigram"))
def find_bigram_subnetwork(
    model,
    texts: Sequence[str],
    *,
    lam: NonNegativeFloat = 10.0,
    steps: PositiveInt = 1500,
    lr: float = 5e-3,
    maskable=None,
    table: BigramTable | None = None,
    max_len: PositiveInt | None = None,
    **kwargs,
) -> Subnetwork:
    """The bigram subnetwork of ``model``: masks whose masked model predicts P(next | current token).

    ``texts``: training text (the bigram target is counted on them with the model's tokenization unless
    ``table`` is given). ``max_len``: train on the first ``max_len`` tokens of each text (a real model's step
    cost grows with the length; the table is still counted on whole texts). ``lam``: sparsity weight (larger keeps
    fewer weights; the penalty is a mean over all maskable entries, so a larger model feels it less per entry and a
    short run needs a larger ``lam``: see bench/results/subnetworks_real.md). ``maskable``: restrict to some components
    (e.g. ``["MLP in", "MLP out"]``). Other keywords go to ``train_mask`` (``batch_size``,
    ``beta_growth``, ``stop_fraction``, ``seed``, ``progress``, ``callback``; a misspelt one raises ``InterpError``).
    Returns a ``Subnetwork`` holding the masks and the bigram table.
    """
    seqs = encode_texts(model, texts, max_len=max_len)
    table = table or bigram_table(model, texts)
    if table.vocab != int(model.cfg.d_vocab):
        raise InterpError(f"the bigram table has {table.vocab} tokens but the model {model.cfg.d_vocab}")

    def target_fn(ids: torch.Tensor, valid: torch.Tensor, _full) -> torch.Tensor:
        return table.rows(ids[:, :-1][valid].cpu())

    return train_mask(model, seqs, target_fn, target="bigram", lam=lam, steps=steps, lr=lr, maskable=maskable,
                      bigram=table, **kwargs)


@checks_options(forwards=train_mask, exclude=("target",))
def find_pruned_subnetwork(
    model, texts: Sequence[str], *, lam: NonNegativeFloat = 10.0, steps: PositiveInt = 1500, lr: float = 5e-3, maskable=None,
    max_len: PositiveInt | None = None, **kwargs,
) -> Subnetwork:
    """The "optimal pruning" subnetwork: the same training with the full model's own next-token distribution as target
    (``max_len`` as in ``find_bigram_subnetwork``; pass ``bigram=table`` to store a bigram table for ``evaluate``)."""
    seqs = encode_texts(model, texts, max_len=max_len)

    def target_fn(_ids, valid: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        return torch.softmax(full[:, :-1][valid].float(), -1)

    return train_mask(model, seqs, target_fn, target="model", lam=lam, steps=steps, lr=lr, maskable=maskable, **kwargs)
