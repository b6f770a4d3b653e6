"""Real text, offline: prose and code from Python's own installation, and a user's own corpora.

- ``prose(split)``: paragraphs of the Python reference manual (``pydoc_data.topics``);
- ``code(split)``: top-level function and class chunks of the standard library's ``.py`` sources;
- ``load_corpus(source)``: one of those names, a list of strings, a ``.txt`` / ``.jsonl`` file, or a
  Hugging Face ``datasets.Dataset``;
- ``split_docs`` (deterministic train / held-out split by content hash) and ``cut_to_tokens``.
"""

from interp.corpora.builtin import DOMAINS, code, prose
from interp.corpora.split import split_docs
from interp.corpora.user import cut_to_tokens, load_corpus

__all__ = ["prose", "code", "DOMAINS", "load_corpus", "split_docs", "cut_to_tokens"]
