"""Occlusion by deletion (the default): each score is the objective on the whole prefix minus the objective with that
one token removed, computed here naively one sequence at a time; BOS is never deleted (score 0); an image prompt or a
one-token context falls back to the pad replacement and says so."""

import math

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.objectives import Contrast


def _prob(model, ids: list[int], target: int, kind: str = "prob", against: int | None = None) -> float:
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids]))[0, -1].float(), -1)
    v = lp if kind == "logprob" else lp.exp()
    return float(v[target] - (0.0 if against is None else v[against]))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_scores_are_the_drop_when_each_token_is_deleted(random_models, family):
    model = random_models[family]
    ids = [int(x) for x in torch.randint(5, model.cfg.d_vocab, (9,), generator=torch.Generator().manual_seed(1))]
    a = attribute(model, torch.tensor(ids[:7]), ids[7:], method="occlusion")  # two targets: 7 and 8
    assert a.info["replacement"] == "delete"
    bos = a.source_tokens[0] == model.tokenizer.bos_token
    for row, p in enumerate(a.target_positions):
        prefix = ids[:p]
        full = _prob(model, prefix, ids[p])
        for j in range(p):
            want = 0.0 if (j == 0 and bos) else full - _prob(model, prefix[:j] + prefix[j + 1 :], ids[p])
            assert math.isclose(float(a.scores[row, j]), want, abs_tol=2e-5), (row, j)
        assert torch.isnan(a.scores[row, p:]).all()


def test_objective_and_contrast_apply_to_deletion(random_models):
    model = random_models["llama"]
    ids = [int(x) for x in torch.randint(5, model.cfg.d_vocab, (8,), generator=torch.Generator().manual_seed(2))]
    a = attribute(model, torch.tensor(ids[:7]), ids[7], method="occlusion", objective=Contrast(ids[3], kind="logprob"))
    p = a.target_positions[0]
    full = _prob(model, ids[:p], ids[p], "logprob", ids[3])
    for j in range(1 if a.source_tokens[0] == model.tokenizer.bos_token else 0, p):
        want = full - _prob(model, ids[:j] + ids[j + 1 : p], ids[p], "logprob", ids[3])
        assert math.isclose(float(a.scores[0, j]), want, abs_tol=1e-4)


def test_bos_is_kept_and_scores_zero(stories):
    a = attribute(stories, "Once upon a time there was a girl named Lily. She", " loved", method="occlusion")
    assert a.info["replacement"] == "delete"
    if a.source_tokens[0] == stories.tokenizer.bos_token:
        assert float(a.scores[0, 0]) == 0.0
    assert torch.isfinite(a.row()).all()


def test_one_token_context_falls_back_to_pad(random_models):
    model = random_models["gpt2"]
    a = attribute(model, torch.tensor([11]), 12, method="occlusion")  # ids as given: no BOS, one context token
    assert a.target_positions == [1] and a.info["replacement"] == "pad"
    assert math.isclose(float(a.scores[0, 0]), _prob(model, [11], 12) - _prob(model, [a.info["replacement_id"]], 12),
                        abs_tol=2e-5)
