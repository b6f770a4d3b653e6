"""Tokenizers of the bundled models, built with the ``tokenizers`` library (no download)."""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS = "<|bos|>"
PAD = "<|pad|>"


def _wrap(tok: Tokenizer, bos: str, pad: str) -> PreTrainedTokenizerFast:
    """Prepend BOS on every encode and wrap as a HF fast tokenizer (BOS doubles as EOS)."""
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=bos, pad_token=pad, unk_token=None)


def train_bpe(texts: list[str], vocab_size: int, extra_special: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` (deterministic for the same texts in the same order); BOS is id 0, PAD 1,
    then ``extra_special`` (e.g. ``("<image>",)``) in order."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[BOS, PAD, *extra_special], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    wrapped = _wrap(tok, BOS, PAD)
    if extra_special:
        wrapped.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return wrapped


def char_tokenizer(symbols: list[str], bos: str = "<bos>", pad: str = "<pad>") -> PreTrainedTokenizerFast:
    """One token per character of ``symbols`` (ids in order), then BOS and PAD."""
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab[bos], vocab[pad] = len(symbols), len(symbols) + 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token=pad))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([bos, pad])
    return _wrap(tok, bos, pad)
