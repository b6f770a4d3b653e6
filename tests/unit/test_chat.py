"""chat_prompt: a message in the model's chat template, or a clear error when the model has none (toy tokenizers)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from interp.errors import InterpError
from interp.models import to_tokens
from interp.models.chat import chat_prompt, has_chat_template
from interp.zoo import zoo_path

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
"""SmolLM2's template shape (ChatML) without its default system message."""

NO_SYSTEM = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
             "{% for m in messages %}<turn>{{ m['content'] }}</turn>{% endfor %}")
"""A template that refuses a system message (as Gemma's does)."""


@pytest.fixture
def tokenizer():
    """A fresh copy of the toy ``stories`` tokenizer (carries no chat template; BOS is ``<|bos|>``)."""
    return AutoTokenizer.from_pretrained(str(zoo_path("stories")))


def test_a_model_without_a_template_is_a_clear_error(stories):
    assert not has_chat_template(stories)
    with pytest.raises(InterpError, match="model 'stories' has no chat template.*plain text"):
        chat_prompt(stories, "where is mia?")


def test_tokenizer_template_wraps_the_message_and_a_system_turn(tokenizer):
    tokenizer.chat_template = CHATML
    assert has_chat_template(tokenizer)
    assert chat_prompt(tokenizer, "where is mia?") == "<|im_start|>user\nwhere is mia?<|im_end|>\n<|im_start|>assistant\n"
    assert chat_prompt(tokenizer, "where is mia?", system="be brief") == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nwhere is mia?<|im_end|>\n<|im_start|>assistant\n")
    assert chat_prompt(tokenizer, "hi", add_generation_prompt=False) == "<|im_start|>user\nhi<|im_end|>\n"


def test_a_given_template_serves_a_model_that_has_none(stories):
    got = chat_prompt(stories, "where is mia?", template=CHATML)
    assert got.startswith("<|im_start|>user\nwhere is mia?") and got.endswith("<|im_start|>assistant\n")


def test_a_leading_bos_is_dropped_so_the_tokens_hold_one(stories, tokenizer):
    """``to_tokens`` prepends BOS itself: a template that writes ``{{ bos_token }}`` must not give two."""
    tokenizer.chat_template = "{{ bos_token }}" + CHATML
    model = SimpleNamespace(tokenizer=tokenizer, cfg=SimpleNamespace(default_prepend_bos=True, interp_name="toy"))
    text = chat_prompt(model, "mia found a key")
    assert not text.startswith("<|bos|>") and text.startswith("<|im_start|>user")
    ids = to_tokens(stories, text)[0].tolist()
    bos = stories.tokenizer.bos_token_id
    assert ids[0] == bos and bos not in ids[1:]
    keep = SimpleNamespace(tokenizer=tokenizer, cfg=SimpleNamespace(default_prepend_bos=False, interp_name="toy"))
    assert chat_prompt(keep, "mia found a key").startswith("<|bos|><|im_start|>user")  # no BOS added later: kept


def test_bad_messages_and_refusing_templates_are_one_line_errors(tokenizer):
    tokenizer.chat_template = CHATML
    for bad in ("", "   "):
        with pytest.raises(InterpError, match="chat message is empty"):
            chat_prompt(tokenizer, bad)
    for bad in (None, 3):
        with pytest.raises(InterpError, match="chat message must be text"):
            chat_prompt(tokenizer, bad)
    with pytest.raises(InterpError, match="system message is empty"):
        chat_prompt(tokenizer, "hi", system=" ")
    with pytest.raises(InterpError, match="not valid text: character 4"):
        chat_prompt(tokenizer, "mia \udcff")
    with pytest.raises(InterpError, match="could not format.*System role not supported.*drop system="):
        chat_prompt(tokenizer, "hi", system="be brief", template=NO_SYSTEM)
    assert chat_prompt(tokenizer, "hi", template=NO_SYSTEM) == "<turn>hi</turn>"
    with pytest.raises(InterpError, match="needs a loaded model with a tokenizer"):
        chat_prompt(object(), "hi")
