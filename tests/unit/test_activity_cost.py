"""head_activity says what a sweep costs before it starts: exact counts of head ablations and forward passes, an
estimate from the first timed step, printed and kept in the result's ``cost`` (and ``activity_corpus`` likewise)."""

from __future__ import annotations

import json
import logging
import math

from interp.extreme.activity import HeadActivity, head_activity
from interp.extreme.activity_cost import plan_cost, seconds_text
from interp.results import read_safetensors, write_safetensors
from interp.scale import activity_corpus

TEXTS = ["one day mia found a key in the garden . then mia took the key home .",
         "the cat sat on the mat and the dog ran .", "mia had a red ball .", "tom saw a big tree in the park ."]
DOMAINS = {"a": TEXTS, "b": TEXTS[:2]}


def test_plan_cost_counts_the_stacked_passes():
    # batches of 100 and 40 tokens, 6 interventions, at most 250 tokens a pass: 2 copies (3 passes) and 6 copies (1 pass)
    assert plan_cost([100, 40], 6, 250) == {"clean_passes": 2, "intervention_passes": 4, "intervention_tokens": 840}
    assert plan_cost([5000], 4, 250) == {"clean_passes": 1, "intervention_passes": 4, "intervention_tokens": 20000}
    assert plan_cost([10], 0, 250)["intervention_passes"] == 0
    assert [seconds_text(s) for s in (42, 210, 9000)] == ["42 s", "3.5 min", "2.5 h"]


def test_the_counts_are_the_passes_run_and_the_estimate_is_said_first(stories, one_thread_module, capsys, caplog,
                                                                        monkeypatch):
    passes = []
    run = stories.run_with_hooks
    monkeypatch.setattr(stories, "run_with_hooks", lambda *a, **k: passes.append(1) or run(*a, **k))
    heads = [(0, 0), (1, 2), (3, 1)]
    with caplog.at_level(logging.INFO, logger="interp.extreme.activity"):
        r = head_activity(stories, DOMAINS, heads=heads, batch_size=2, max_batch_tokens=64, progress=True)
    c = r.cost
    assert (c["domains"], c["heads"], c["head_ablations"]) == (2, 3, 2 * 3 * 2)
    assert c["clean_passes"] + c["intervention_passes"] == len(passes)  # counted before, equal to what ran
    assert c["intervention_passes"] > c["head_ablations"] // 2  # 64-token passes hold few copies: the count is not trivial
    # the seconds are recorded (their values depend on the machine: no bound on them here)
    assert all(isinstance(c[k], float) and math.isfinite(c[k]) for k in ("first_step_s", "estimate_s", "elapsed_s"))
    line = f"head activity: 12 head ablations, {c['intervention_passes']} forward passes; the first step took"
    err = capsys.readouterr().err
    assert line in err and "so the whole sweep takes about" in err
    assert any(line in m for m in caplog.messages)  # the logger says it too (for runs without a terminal)


def test_the_cost_is_saved_and_older_files_without_it_load(stories, one_thread_module, tmp_path):
    r = head_activity(stories, {"a": TEXTS[:2]}, heads=[(0, 0)], progress=False)
    path = r.save(tmp_path / "a.safetensors")
    assert HeadActivity.load(path).cost == r.cost
    header, tensors = read_safetensors(path)
    fields = json.loads(header["fields"])
    del fields["cost"]
    old = write_safetensors(tmp_path / "old.safetensors", tensors, {**header, "fields": json.dumps(fields)})
    assert HeadActivity.load(old).cost == {}
    no = head_activity(stories, {"a": TEXTS[:2]}, interventions=False, progress=False)
    assert no.cost["clean_passes"] == 1 and "estimate_s" not in no.cost


def test_activity_corpus_counts_its_shards_and_estimates_from_the_first(stories, one_thread_module, capsys):
    r = activity_corpus(stories, DOMAINS, heads=[(0, 0), (2, 2)], shard_docs=2, batch_size=2, progress=True)
    c = r.cost
    assert (c["shards"], c["heads"], c["head_ablations"]) == (3, 2, 4 * 3)
    assert c["forward_passes"] == c["clean_passes"] + c["intervention_passes"] and c["estimate_s"] > 0
    assert f"activity shards: 12 head ablations, {c['forward_passes']} forward passes, 3 shards; the first step took" in (
        capsys.readouterr().err)

