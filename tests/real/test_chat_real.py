"""Chat prompts on SmolLM2-135M-Instruct: the GGUF-converted tokenizer carries the ChatML template, the workbench's
tokens of ``chat_prompt`` are exactly the template's own token ids, and under the template the model answers."""

from __future__ import annotations

import torch

from interp.models import to_tokens
from interp.models.chat import chat_prompt, has_chat_template
from interp.predict import predict

QUESTION = "What is the capital of France?"


def test_smollm2_chat_prompt_is_the_templates_tokens_and_gets_an_answer(smollm2, one_thread_module):
    assert has_chat_template(smollm2)  # the GGUF's tokenizer.chat_template survives the conversion
    text = chat_prompt(smollm2, QUESTION)
    assert text.endswith(f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n")
    ids = to_tokens(smollm2, text)[0].tolist()
    ref = smollm2.tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=True,
                                                add_generation_prompt=True)
    ref = list(ref["input_ids"] if hasattr(ref, "keys") else ref)
    assert ids == ref  # one BOS (<|im_start|>), then the template's tokens: nothing doubled or lost
    # As plain text the question is most likely ended (<|im_end|>, p 0.50 when measured); as a user turn the model
    # starts an answer and, greedily, names Paris (measured: "The capital of France is Paris.").
    assert predict(smollm2, QUESTION).next_tokens[0] == "<|im_end|>"
    chat = predict(smollm2, text)
    assert chat.next_tokens[0] not in ("<|im_end|>", "\n")
    tokens = to_tokens(smollm2, text)
    with torch.no_grad():
        for _ in range(8):
            nxt = smollm2(tokens)[0, -1].argmax()
            tokens = torch.cat([tokens, nxt.view(1, 1)], dim=1)
    answer = smollm2.tokenizer.decode(tokens[0, len(ids):])
    assert "Paris" in answer, answer
