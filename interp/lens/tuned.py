"""Tuned lens (Belrose et al. 2023): one learned affine translator per layer before the logit-lens decoder.

Translator ``l`` maps ``blocks.{l}.hook_resid_pre`` to ``h + A_l h + b_l`` with ``A_l`` and ``b_l``
zero-initialised, so an untrained lens is exactly the logit lens. Training minimises KL(p_final || q_l)
at the same position, with the model and its decoder frozen (only the translators get gradients).
The final residual (``final_post``) needs no translator.

Files: a folder with ``config.json`` (model name, d_model, n_layers, decoder hash, training settings, the SHA-256 of
``params.safetensors``) and ``params.safetensors``; a params file that does not match its SHA-256 is refused, and
loading a lens onto a model whose decoder differs is an error.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.io import atomic_write_dir, check_sha256, sha256_file
from interp.lens.data import decoder_hash, encode_texts, pad_batches
from interp.lens.logit import decode, lens_rows
from interp.models import model_name

__all__ = ["TunedLens", "heldout_kl"]


class _TrainOrMode:
    """``TunedLens.train(model, texts, ...)`` trains a lens; ``lens.train(mode)`` is ``nn.Module.train``."""

    def __get__(self, obj, cls):
        return cls.fit if obj is None else torch.nn.Module.train.__get__(obj, cls)


class TunedLens(torch.nn.Module):
    """Per-layer residual affine translators; ``translators[l]`` reads ``blocks.{l}.hook_resid_pre``."""

    def __init__(self, d_model: int, n_layers: int, *, model: str = "", decoder: str = "", bias: bool = True, info: dict | None = None):
        super().__init__()
        self.translators = torch.nn.ModuleList(torch.nn.Linear(d_model, d_model, bias=bias) for _ in range(n_layers))
        for t in self.translators:
            torch.nn.init.zeros_(t.weight)
            if bias:
                torch.nn.init.zeros_(t.bias)
        self.model_name, self.decoder, self.info = model, decoder, dict(info or {})

    @classmethod
    def for_model(cls, model) -> TunedLens:
        """An untrained (identity) lens shaped for ``model``, on its device."""
        lens = cls(model.cfg.d_model, model.cfg.n_layers, model=model_name(model), decoder=decoder_hash(model))
        return lens.to(model.cfg.device)

    # ---- applying ----------------------------------------------------------------------------
    def translate(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """``h + A_layer h + b_layer`` for residual vectors ``h`` [..., d_model] at ``resid_pre`` of ``layer``."""
        t = self.translators[layer]
        return h + t(h.to(t.weight.dtype)).to(h.dtype)

    def translate_stack(self, stack: torch.Tensor) -> torch.Tensor:
        """Translate a [n_layers + 1, ..., d_model] stack (resid_pre of each block, then final_post)."""
        if stack.shape[0] != len(self.translators) + 1:
            raise InterpError(f"the tuned lens has {len(self.translators)} translators but the stack has {stack.shape[0]} rows")
        rows = [self.translate(stack[i], i) for i in range(len(self.translators))]
        return torch.stack([*rows, stack[-1]])

    def check_model(self, model) -> None:
        """Raise ``InterpError`` unless ``model`` has this lens's shape and decoder weights."""
        n, d = len(self.translators), self.translators[0].in_features if len(self.translators) else model.cfg.d_model
        if (n, d) != (model.cfg.n_layers, model.cfg.d_model):
            raise InterpError(
                f"this tuned lens is for a model with {n} layers and d_model {d}, not {model.cfg.n_layers} and {model.cfg.d_model}"
                f" ({model_name(model)}): train one for this model with TunedLens.train"
            )
        got = decoder_hash(model)
        if self.decoder and got != self.decoder:
            raise InterpError(
                f"this tuned lens was trained on {self.model_name!r} (decoder hash {self.decoder}) and {model_name(model)!r} has "
                f"different final-norm/unembedding weights (hash {got}): train a lens for this model"
            )

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        model,
        texts: list[str],
        *,
        steps: int = 300,
        batch_size: int = 8,
        lr: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 1e-3,
        seed: int = 0,
        progress: bool = True,
        max_len: int | None = None,
    ) -> TunedLens:
        """Train a tuned lens for ``model`` on ``texts``; returns it (on the model's device). Also ``TunedLens.train(...)``.

        Each step draws ``batch_size`` texts (seeded), runs the frozen model once, and lowers
        KL(p_final || q_l) summed over layers (mean over real tokens), each layer back-propagated on its own.
        ``optimizer``: "adam" (AdamW, ``lr``, linear decay) or "sgd" (Nesterov momentum 0.9, lr ``lr``,
        linear decay: the tuned-lens package's choice with lr 0.1). Gradients are clipped to norm 1.
        Interrupting (Ctrl-C) returns nothing and writes nothing.
        """
        from interp.validate import check_float, check_int, check_seed

        steps, batch_size = check_int("steps", steps, minimum=1), check_int("batch_size", batch_size, minimum=1)
        lr, weight_decay = check_float("lr", lr, minimum=0.0), check_float("weight_decay", weight_decay, minimum=0.0)
        seed = check_seed(seed)
        if max_len is not None:
            max_len = check_int("max_len", max_len, minimum=2)
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise InterpError("texts must be a list of strings (the training corpus)")
        seqs = encode_texts(model, texts, max_len)
        lens = cls.for_model(model)
        lens.info = dict(steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay, seed=seed,
                         texts=len(seqs), tokens=int(sum(len(s) for s in seqs)))
        params = list(lens.parameters())
        if optimizer == "adam":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        elif optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        else:
            raise InterpError(f"unknown optimizer {optimizer!r}: use 'adam' or 'sgd'")
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
        rng = random.Random(seed)
        names = [name for _, name in lens_rows(model)]
        losses = []
        bar = tqdm(range(steps), desc="tuned lens", disable=not progress)
        for _ in bar:
            picks = [seqs[rng.randrange(len(seqs))] for _ in range(batch_size)]
            _, ids, mask = next(pad_batches(picks, batch_size))
            stack, final_logp = _states(model, ids, names)
            mask = mask.to(stack.device)
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for layer, t in enumerate(lens.translators):
                q = torch.log_softmax(decode(model, lens.translate(stack[layer], layer)).float(), -1)
                loss = _masked_kl(final_logp, q, mask)
                grads = torch.autograd.grad(loss, list(t.parameters()))
                for p, g in zip(t.parameters(), grads):
                    p.grad = g
                total += loss.item()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(total / len(lens.translators))
            bar.set_postfix(kl=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
        lens.info["final_mean_kl"] = sum(losses[-10:]) / len(losses[-10:])
        return lens.eval()

    train = _TrainOrMode()

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write ``config.json`` + ``params.safetensors`` into folder ``path`` atomically (replacing it).

        ``dtype``: storage precision (``torch.float16`` halves the file of a real model's lens); loading
        always gives float32 parameters. Returns ``path``."""
        path = Path(path)
        config = dict(format="interp-tuned-lens-v1", model=self.model_name, decoder_hash=self.decoder,
                      d_model=self.translators[0].in_features, n_layers=len(self.translators),
                      bias=self.translators[0].bias is not None, info=self.info)
        def write(tmp: Path) -> None:
            state = {k: v.detach().to(dtype).cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(state, str(tmp / "params.safetensors"))
            sums = {"sha256": {"params.safetensors": sha256_file(tmp / "params.safetensors")}}
            (tmp / "config.json").write_text(json.dumps(dict(config, **sums), indent=2) + "\n")

        atomic_write_dir(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path, model=None, *, verify: bool = True) -> TunedLens:
        """Read a lens folder; with ``model`` it is checked against it (``InterpError`` on mismatch) and moved to its device.

        ``params.safetensors`` must match the SHA-256 in ``config.json`` (``InterpError`` when it does not or there is
        none); ``verify=False`` reads a lens saved before checksums existed: save it again to give it one."""
        path = Path(path)
        if not (path / "config.json").is_file() or not (path / "params.safetensors").is_file():
            raise InterpError(f"{path} is not a tuned-lens folder (needs config.json and params.safetensors)")
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InterpError(f"{path}/config.json is not JSON: the lens folder is damaged, save it again") from None
        if not isinstance(config, dict) or config.get("format") != "interp-tuned-lens-v1":
            raise InterpError(f"{path}/config.json is not an interp tuned lens")
        try:
            lens = cls(int(config["d_model"]), int(config["n_layers"]), model=str(config["model"]),
                       decoder=str(config["decoder_hash"]), bias=bool(config["bias"]), info=dict(config.get("info") or {}))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise InterpError(f"{path}/config.json is damaged ({type(e).__name__}: {e}): save the lens again") from None
        try:
            state = load_file(str(path / "params.safetensors"))
            lens.load_state_dict({k: v.float() for k, v in state.items()})
        except Exception as e:  # safetensors errors for truncated files, RuntimeError for missing/misshapen tensors
            raise InterpError(f"{path}/params.safetensors does not fit its config.json ({str(e).splitlines()[0][:160]}): "
                              "save the lens again") from None
        if verify:
            sums = config.get("sha256")
            check_sha256(path / "params.safetensors", sums.get("params.safetensors") if isinstance(sums, dict) else None,
                         "save or train the lens again")
        if model is not None:
            lens.check_model(model)
            lens = lens.to(model.cfg.device)
        return lens.eval()


@torch.no_grad()
def _states(model, ids: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual stack [n_layers + 1, batch, pos, d] and final log-probs [batch, pos, vocab] for ids."""
    want = set(names)
    _, cache = model.run_with_cache(ids.to(model.cfg.device), names_filter=lambda n: n in want)
    stack = torch.stack([cache[n] for n in names])
    return stack, torch.log_softmax(decode(model, stack[-1]).float(), -1)


def _masked_kl(p_logp: torch.Tensor, q_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens of KL(p || q); inputs [batch, pos, vocab], mask [batch, pos]."""
    kl = (p_logp.exp() * (p_logp - q_logp)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp_min(1)


@torch.no_grad()
def heldout_kl(model, texts: list[str], lens: TunedLens | None = None, *, batch_size: int = 16) -> torch.Tensor:
    """Mean KL(p_final || p_layer) in nats per lens row [n_layers + 1] over all tokens of ``texts``.

    ``lens=None`` measures the logit lens. The last entry (final_post) is 0 up to float error.
    """
    seqs = encode_texts(model, texts)
    names = [name for _, name in lens_rows(model)]
    total = torch.zeros(len(names), dtype=torch.float64)
    count = 0
    for _, ids, mask in pad_batches(seqs, batch_size):
        stack, final = _states(model, ids, names)
        if lens is not None:
            stack = lens.translate_stack(stack)
        mask = mask.to(stack.device)
        for i in range(len(names)):
            q = torch.log_softmax(decode(model, stack[i]).float(), -1)
            total[i] += ((final.exp() * (final - q)).sum(-1) * mask).sum().double().cpu()
        count += int(mask.sum())
    return (total / count).float()
