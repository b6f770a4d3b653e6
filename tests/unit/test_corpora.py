"""interp.corpora: Python's own prose and code, the hash split, user corpora, token budgets."""

from __future__ import annotations

import json

import pytest

from interp.corpora import code, cut_to_tokens, load_corpus, prose, split_docs
from interp.errors import InterpError


def test_builtin_corpora_are_deterministic_and_split_disjointly():
    for fn in (prose, code):
        train, held, every = fn("train"), fn("heldout"), fn("all")
        assert len(every) >= 200 and fn("all") == every  # same order every call
        assert not set(train) & set(held) and len(train) + len(held) == len(every)
        assert 0.03 < len(held) / len(every) < 0.2  # a 10% hash split
    assert all("\n" not in p and len(p.split()) >= 25 for p in prose("all"))  # paragraphs, hard wraps joined
    assert all(c.lstrip().startswith(("def ", "class ", "async def ", "@")) for c in code("all"))


def test_split_does_not_depend_on_order_or_count():
    docs = [f"document number {i}" for i in range(400)]
    held = split_docs(docs, "heldout")
    assert split_docs(docs[::-1], "heldout") == held[::-1]
    assert split_docs(docs[:200], "heldout") == [d for d in held if d in docs[:200]]
    with pytest.raises(InterpError, match="unknown split"):
        split_docs(docs, "test")


def test_user_corpora(tmp_path):
    (tmp_path / "a.txt").write_text("first paragraph\n\nsecond one\n\n\n")
    assert load_corpus(tmp_path / "a.txt") == ["first paragraph", "second one"]
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "x y"}) + "\n\n" + json.dumps({"text": "z"}) + "\n")
    assert load_corpus(str(tmp_path / "b.jsonl")) == ["x y", "z"]
    assert load_corpus(["a", " ", "b"], limit=1) == ["a"]
    assert load_corpus("prose", split="heldout") == prose("heldout")
    (tmp_path / "c.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(InterpError, match="no field 'text'"):
        load_corpus(tmp_path / "c.jsonl")
    with pytest.raises(InterpError, match="no such corpus file"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(InterpError, match="cannot read a corpus"):
        load_corpus(42)


def test_datasets_like_object():
    class Rows:  # the two things load_corpus reads from a datasets.Dataset
        column_names = ["text", "label"]

        def __getitem__(self, key):
            return {"text": ["one", "two"], "label": [0, 1]}[key]

    assert load_corpus(Rows()) == ["one", "two"]
    with pytest.raises(InterpError, match="no column 'body'"):
        load_corpus(Rows(), field="body")


def test_cut_to_tokens(stories):
    text = "one day mia found a key in the garden"
    cut = cut_to_tokens([text, "mia"], stories, 3)
    assert cut[1] == "mia" and text.startswith(cut[0])
    assert stories.to_tokens(cut[0], prepend_bos=False).shape[-1] == 3
    with pytest.raises(InterpError, match="max_tokens"):
        cut_to_tokens([text], stories, 0)
