"""Replacement samplers for ReAGent: which token stands in for a masked one.

Every sampler is prepared once per attributed prefix (``prepare(tokens)``) and then draws replacement
sequences ``[n, T]`` from a ``torch.Generator`` (the caller decides which positions are used), so the
randomness depends only on the generator's seed, never on the scores.

- ``UniformSampler``: uniform over the vocabulary minus the special tokens (bos, eos, pad, unk).
- ``UnigramSampler``: token frequencies of a corpus (less out-of-distribution than uniform).
- ``ModelSampler``: the attributed model's own argmax next-token prediction at each position, shifted by
  one (the reference ``inferential`` sampler); fixed for a prefix, position 0 falls back to uniform.
- ``MLMSampler``: a local Hugging Face masked LM fills each position in turn; its top candidates are
  re-tokenized with the attributed model's tokenizer, single-token candidates are kept and drawn in
  proportion to the MLM's probabilities (uniform where none survives).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from interp.errors import InterpError
from interp.validate import checks_options

__all__ = ["TokenSampler", "UniformSampler", "UnigramSampler", "ModelSampler", "MLMSampler", "make_sampler", "SAMPLERS"]

SAMPLERS = ("uniform", "unigram", "model", "mlm")


def special_ids(model) -> list[int]:
    """Ids of the tokenizer's special tokens (never drawn as replacements)."""
    tok = getattr(model, "tokenizer", None)
    ids = set(getattr(tok, "all_special_ids", []) or [])
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        v = getattr(tok, name, None)
        if v is not None:
            ids.add(int(v))
    return sorted(i for i in ids if 0 <= i < model.cfg.d_vocab)


class TokenSampler:
    """Base class. ``prepare(tokens [T])`` once per prefix, then ``sample(tokens [T], n, gen) -> [n, T]``."""

    name = "base"

    def prepare(self, tokens: torch.Tensor) -> None:  # noqa: B027 - optional hook
        """Precompute anything that depends on the prefix (default: nothing)."""

    def sample(self, tokens: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


class _TableSampler(TokenSampler):
    """Draws every position independently from one distribution ``probs`` [vocab]."""

    def __init__(self, probs: torch.Tensor):
        if probs.ndim != 1 or not torch.isfinite(probs).all() or (probs < 0).any() or probs.sum() <= 0:
            raise InterpError("a sampler needs a non-negative, non-zero distribution over the vocabulary")
        self.probs = (probs / probs.sum()).double()
        self.cdf = self.probs.cumsum(0)
        self.cdf[-1] = 1.0

    def sample(self, tokens: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, tokens.shape[-1], generator=gen, dtype=torch.float64)
        ids = torch.searchsorted(self.cdf, u, right=True).clamp_max(self.cdf.numel() - 1)
        return ids.to(tokens.device)


class UniformSampler(_TableSampler):
    """Uniform over the ``vocab`` ids except ``exclude`` (the special tokens)."""

    name = "uniform"

    def __init__(self, vocab: int, exclude: Iterable[int] = ()):
        probs = torch.ones(vocab, dtype=torch.float64)
        probs[list(exclude)] = 0
        super().__init__(probs)

    @classmethod
    def for_model(cls, model) -> UniformSampler:
        return cls(model.cfg.d_vocab, special_ids(model))


class UnigramSampler(_TableSampler):
    """Draws tokens with their corpus frequencies ``counts`` [vocab] (special tokens get zero weight)."""

    name = "unigram"

    def __init__(self, counts: torch.Tensor, exclude: Iterable[int] = ()):
        counts = counts.double().clone()
        counts[list(exclude)] = 0
        super().__init__(counts)

    @classmethod
    def from_texts(cls, model, texts: Iterable[str]) -> UnigramSampler:
        """Count the tokens of ``texts`` with the model's tokenizer (add-one smoothing keeps every token possible)."""
        counts = torch.ones(model.cfg.d_vocab, dtype=torch.float64)
        for t in texts:
            ids = torch.tensor(model.tokenizer(t).input_ids, dtype=torch.long)
            ids = ids[ids < counts.numel()]
            counts.index_add_(0, ids, torch.ones(ids.numel(), dtype=torch.float64))
        return cls(counts, special_ids(model))

    @classmethod
    def for_model(cls, model, texts: Iterable[str] | None = None) -> UnigramSampler:
        """From ``texts``; for the bundled ``stories`` model without texts, from 2,000 generated documents."""
        if texts is None:
            from interp.zoo import bundled_name

            if bundled_name(model) != "stories":
                raise InterpError("the unigram sampler needs a corpus: pass sampler_texts=[...] (strings of your domain)")
            from interp.zoo import stories

            texts = [d.text for d in stories.generate(stories.World.from_seed(0), 2000, seed=1)]
        return cls.from_texts(model, texts)


class ModelSampler(TokenSampler):
    """The attributed model's own argmax prediction for each position (position 0: uniform draw)."""

    name = "model"

    def __init__(self, model, fallback: TokenSampler | None = None):
        self.model = model
        self.fallback = fallback or UniformSampler.for_model(model)
        self.table: torch.Tensor | None = None

    @torch.no_grad()
    def prepare(self, tokens: torch.Tensor) -> None:
        logits = self.model(tokens[None])[0]
        self.table = torch.cat([tokens[:1], logits[:-1].argmax(-1)])

    def sample(self, tokens: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.table is None or self.table.shape[0] != tokens.shape[-1]:
            self.prepare(tokens)
        out = self.table.to(tokens.device).expand(n, -1).clone()
        out[:, 0] = self.fallback.sample(tokens[:1], n, gen)[:, 0]
        return out


class MLMSampler(TokenSampler):
    """Replacements proposed by a local Hugging Face masked LM (a directory path or a loaded model + tokenizer).

    For each position ``t`` of the prefix, the text is rebuilt with token ``t`` replaced by the MLM's mask
    token; the MLM's ``top_k`` candidates are re-tokenized with the attributed model's tokenizer (with the
    leading space the original token had) and kept when they are one token. All positions go through the
    MLM in one batch per prefix.

    A directory is read with local files only and ``trust_remote_code`` as given (default False): a folder whose
    model needs its own Python code raises ``InterpError`` instead of asking on the terminal or running it.
    """

    name = "mlm"

    def __init__(self, model, mlm: str | Path | object, mlm_tokenizer=None, *, top_k: int = 20,
                 trust_remote_code: bool = False):
        from interp.validate import check_bool, check_int

        self.model, self.top_k = model, check_int("the MLM sampler's top_k", top_k, minimum=1)
        check_bool("trust_remote_code", trust_remote_code)
        if isinstance(mlm, (str, Path)):
            mlm_tokenizer, mlm = _load_mlm(Path(mlm).expanduser(), trust_remote_code)
        if mlm_tokenizer is None or getattr(mlm_tokenizer, "mask_token", None) is None:
            raise InterpError("the MLM sampler needs the masked LM's tokenizer, with a mask token")
        self.mlm, self.mlm_tok = mlm.eval(), mlm_tokenizer
        self.fallback = UniformSampler.for_model(model)
        self.cand: torch.Tensor | None = None  # [T, top_k] candidate ids of the attributed model (-1: none)
        self.cdf: torch.Tensor | None = None  # [T, top_k]

    @torch.no_grad()
    def prepare(self, tokens: torch.Tensor) -> None:
        tok = self.model.tokenizer
        pieces = [tok.decode([int(i)]) for i in tokens.tolist()]
        special = set(special_ids(self.model))
        texts, where = [], []
        for t, p in enumerate(pieces):
            if int(tokens[t]) in special:
                continue
            lead = " " if p.startswith(" ") else ""
            texts.append("".join(pieces[:t]) + lead + self.mlm_tok.mask_token + "".join(pieces[t + 1 :]))
            where.append(t)
        T = tokens.shape[0]
        cand = torch.full((T, self.top_k), -1, dtype=torch.long)
        weight = torch.zeros(T, self.top_k, dtype=torch.float64)
        if texts:
            enc = self.mlm_tok(texts, return_tensors="pt", padding=True)
            logits = self.mlm(**enc).logits
            mask_pos = enc["input_ids"] == self.mlm_tok.mask_token_id
            for row, t in enumerate(where):
                lp = logits[row][mask_pos[row]]
                if lp.shape[0] == 0:
                    continue
                probs, ids = lp[0].softmax(-1).topk(min(self.top_k, lp.shape[-1]))
                lead = " " if pieces[t].startswith(" ") else ""
                k = 0
                for p, i in zip(probs.tolist(), ids.tolist()):
                    word = self.mlm_tok.decode([i]).strip()
                    if not word:
                        continue
                    new = tok(lead + word, add_special_tokens=False).input_ids
                    if len(new) == 1 and new[0] not in special and new[0] < self.model.cfg.d_vocab:
                        cand[t, k], weight[t, k] = new[0], p
                        k += 1
        self.cand, self.tokens = cand, tokens.clone()
        total = weight.sum(-1, keepdim=True)
        self.cdf = torch.where(total > 0, weight.cumsum(-1) / total.clamp_min(1e-300), torch.zeros_like(weight))

    def sample(self, tokens: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.cand is None or self.cand.shape[0] != tokens.shape[-1] or not torch.equal(self.tokens, tokens.cpu()):
            self.prepare(tokens.cpu())
        u = torch.rand(n, tokens.shape[-1], generator=gen, dtype=torch.float64)
        fb = self.fallback.sample(tokens, n, gen).cpu()
        k = (u[..., None] > self.cdf[None]).sum(-1).clamp_max(self.top_k - 1)  # [n, T]
        picked = self.cand[None].expand(n, -1, -1).gather(-1, k[..., None])[..., 0]
        has = (self.cdf[:, -1] > 0)[None].expand(n, -1)
        return torch.where(has & (picked >= 0), picked, fb).to(tokens.device)


def _has_custom_code(path: Path) -> bool:
    """Whether a model folder asks for its own code (``auto_map`` in config.json or tokenizer_config.json)."""
    import json

    for name in ("config.json", "tokenizer_config.json"):
        try:
            data = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("auto_map"):
            return True
    return False


def _load_mlm(path: Path, trust_remote_code: bool) -> tuple[object, object]:
    """(tokenizer, masked LM) from a local folder; never prompts, runs folder code only when trusted."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    if not path.is_dir():
        raise InterpError(f"the MLM sampler needs a local Hugging Face masked-LM directory; {path} is not one")
    refused = (f"the masked LM in {path} needs its own Python code to load; it was not run. Pass trust_remote_code=True "
               "to the sampler only if you trust that folder")
    if not trust_remote_code and _has_custom_code(path):
        raise InterpError(refused)
    try:
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code, local_files_only=True)
        return (AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code, local_files_only=True),
                AutoModelForMaskedLM.from_pretrained(str(path), config=config, trust_remote_code=trust_remote_code,
                                                     local_files_only=True))
    except (ValueError, OSError, KeyError, TypeError) as e:
        if not trust_remote_code and "trust_remote_code" in str(e):
            raise InterpError(refused) from None
        raise InterpError(f"cannot load a masked LM from {path}: {str(e).splitlines()[0][:200]}") from None


@checks_options()
def make_sampler(model, sampler: str | TokenSampler = "uniform", *, sampler_texts: Iterable[str] | None = None,
                 mlm: str | Path | object | None = None, mlm_tokenizer: object | None = None,
                 trust_remote_code: bool = False) -> TokenSampler:
    """A sampler by name ("uniform", "unigram", "model", "mlm") or a ready ``TokenSampler``.

    ``sampler_texts``: the unigram sampler's corpus (strings); ``mlm``: the MLM sampler's masked-LM directory or loaded
    model, ``mlm_tokenizer`` its tokenizer, ``trust_remote_code``: let an MLM folder run its own code (default False).
    An option the chosen sampler does not use, or a misspelt one, raises ``InterpError``. Returns the sampler.
    """
    used = {"sampler_texts": ("unigram", sampler_texts is not None), "mlm": ("mlm", mlm is not None),
            "mlm_tokenizer": ("mlm", mlm_tokenizer is not None), "trust_remote_code": ("mlm", trust_remote_code)}
    for option, (owner, given) in used.items():
        if given and sampler != owner:
            raise InterpError(f"the ReAGent option {option} is only used by sampler={owner!r}, not by sampler={_label(sampler)}")
    if isinstance(sampler, TokenSampler):
        return sampler
    if sampler == "uniform":
        return UniformSampler.for_model(model)
    if sampler == "unigram":
        if sampler_texts is not None and (isinstance(sampler_texts, str) or not isinstance(sampler_texts, Iterable)):
            raise InterpError(f"sampler_texts must be a list of strings, got {type(sampler_texts).__name__}")
        texts = None if sampler_texts is None else list(sampler_texts)
        if texts is not None and not all(isinstance(t, str) for t in texts):
            raise InterpError("sampler_texts must be a list of strings; some items are not strings")
        return UnigramSampler.for_model(model, texts)
    if sampler == "model":
        return ModelSampler(model)
    if sampler == "mlm":
        if mlm is None:
            raise InterpError("sampler='mlm' needs mlm=<local masked-LM directory> (e.g. a downloaded roberta-base)")
        return MLMSampler(model, mlm, mlm_tokenizer, trust_remote_code=trust_remote_code)
    if not isinstance(sampler, str):
        raise InterpError(f"the ReAGent sampler must be a name ({', '.join(SAMPLERS)}) or a TokenSampler, got {type(sampler).__name__}")
    raise InterpError(f"unknown ReAGent sampler {sampler!r}; choose one of {', '.join(SAMPLERS)} or pass a TokenSampler")


def _label(sampler: str | TokenSampler) -> str:
    return repr(sampler) if isinstance(sampler, str) else f"<{type(sampler).__name__}>"
