"""``compare.ground_truth_examples``: the decided prompts of the stories corpus as ``TruthPrompt`` records whose tokens,
target and deciding position agree with what the model itself reads (whole, cropped to a width, or kept only where the
model is right)."""

import torch

from interp.attribution.compare import ground_truth_examples


def test_records_agree_with_the_model(stories):
    for e in ground_truth_examples(stories, 12):
        assert e.tokens.tolist() == stories.to_tokens(e.text)[0].tolist()  # the stored tokens are the model's own
        assert len(e.sources) == 1 and 0 < e.sources[0] < len(e.tokens)
        assert stories.tokenizer.decode([e.target_id]).startswith(" ")  # the decided word's first token, spaced


def test_cropped_and_correct_only(stories):
    cropped = ground_truth_examples(stories, 8, width=16)
    assert cropped and all(len(e.tokens) <= 16 for e in cropped)
    for e in cropped:
        assert e.tokens.tolist() == stories.to_tokens(e.text)[0].tolist()  # the crop re-tokenises to itself
        assert 0 < e.sources[0] < len(e.tokens)
    right = ground_truth_examples(stories, 6, correct_only=True)
    with torch.no_grad():
        for e in right:
            assert int(stories(e.tokens[None])[0, -1].argmax()) == e.target_id
