"""Issue 36, trust round two: silent wrong answers and bad input that still gave a traceback or a wrong exit code.

Each case is one clear ``InterpError`` (exit status 2 and one line from the command line, nothing written) or, for
the silent ones, an answer that says what it did: a bare-word lens target resolves to the token the model continues
the prompt with and names both ids; a LatentLens readout carries a match percentile that tells a covered token from
one the corpus never saw; index shards are byte-identical between identical runs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interp.cli import REPORT_NEW_TOKENS, main
from interp.errors import InterpError
from interp.lens import logit_lens, resolve_target
from interp.lens.latent import LatentIndex, latent_lens
from interp.lens.latent.manifest import shard_file, stable_bytes
from interp.lens.latent.quality import WEAK
from interp.prompts import BB_PROMPT, TOY_PROMPT, default_prompt

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

PROMPT = "one day mia found a key in the garden . then mia took the"
TEXTS = ["one day mia found a key in the garden . then mia took the key home .",
         "the small dog runs . one day ella found a drum in the market . then ella took the drum home .",
         "where does jack live ? in tokyo . the red goat hides . theo likes pears .",
         "one day jade found a coin in the kitchen . then jade took the coin home ."]
_ROOT = Path(__file__).resolve().parents[2]


# ---- a bare word that is a token with and without its leading space --------------------------------------------
@pytest.fixture
def two_form_word(random_models, monkeypatch):
    """The random gpt2 model, its tokenizer told that "Paris" is the token 'p' and " Paris" the token 'q' (the real
    vocabularies have both forms as tokens: SmolLM2 'Paris' 38634 and ' Paris' 7042); every other text as before."""
    m = random_models["gpt2"]
    tok = m.tokenizer
    original = tok.encode
    bare, spaced = original("p", add_special_tokens=False)[0], original("q", add_special_tokens=False)[0]

    def encode(text, *args, **kwargs):
        return {"Paris": [bare], " Paris": [spaced]}.get(text) or original(text, *args, **kwargs)

    monkeypatch.setattr(tok, "encode", encode)
    return m, bare, spaced


@pytest.mark.parametrize("prompt", ["hello there", "abc", "the cat sat on the"])
def test_a_word_in_two_forms_tracks_the_one_the_model_continues_with(two_form_word, prompt):
    m, bare, spaced = two_form_word
    r = logit_lens(m, prompt, target="Paris", keep_logprobs=True)
    final = r.logprobs[-1, -1]
    want = spaced if final[spaced] >= final[bare] else bare
    assert r.target_id == want
    assert f"id {bare}" in r.target_note and f"id {spaced}" in r.target_note and "continues with" in r.target_note
    # the tracked rank is the rank of that token, not of the other form
    assert int(r.target_rank[-1, -1]) == int((final > final[want]).sum()) + 1


def test_the_choice_follows_the_distribution_not_the_spelling(two_form_word):
    m, bare, spaced = two_form_word
    lp = torch.full((m.cfg.d_vocab,), -20.0)
    lp[spaced] = -0.1
    assert resolve_target(m, "Paris", lp)[0] == spaced
    lp[bare] = 0.0
    tid, _, note = resolve_target(m, "Paris", lp)
    assert tid == bare and "not ' Paris'" in note


def test_without_a_distribution_the_word_is_taken_as_written_and_the_note_names_the_other(two_form_word):
    m, bare, spaced = two_form_word
    tid, _, note = resolve_target(m, "Paris")
    assert tid == bare and f"(id {spaced}) is another token" in note


def test_a_word_written_with_its_space_is_taken_as_written(two_form_word):
    m, _, spaced = two_form_word
    r = logit_lens(m, "hello", target=" Paris")
    assert r.target_id == spaced and r.target_note == ""


# ---- LatentLens: how good is a match ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stories_index(stories):
    return LatentIndex.build(stories, TEXTS * 3, layers=[1, 2], progress=False)


def test_every_readout_carries_a_match_percentile(stories, stories_index):
    r = latent_lens(stories, PROMPT, stories_index, k=3)
    assert r.match_percentile.shape == (len(r.layers), len(r.tokens))
    assert bool(((r.match_percentile >= 0) & (r.match_percentile <= 100)).all())
    assert torch.equal(r.weak(), r.match_percentile < WEAK)
    page = r._repr_html_()
    assert "match percentile" in page and "p" + f"{float(r.match_percentile[0, 1]):.0f}" in page


def test_a_state_the_corpus_holds_matches_better_than_a_random_one(stories, stories_index):
    """A prompt made of a stored text scores at the top of its reference (its own rows come back at cosine ~1); the
    same positions with random vectors in place of the states fall below ``WEAK``."""
    from interp.lens.latent.quality import match_percentile

    r = latent_lens(stories, TEXTS[0], stories_index, layer=[1, 2], k=1)
    assert float(r.match_percentile[:, 2:].median()) >= 90
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2 * len(r.tokens), stories.cfg.d_model, generator=g)
    nb = stories_index.search(noise, 1)
    pct = match_percentile(stories, stories_index, [1, 2], nb.sims[:, 0].reshape(2, -1), nb.layers[:, 0].reshape(2, -1))
    assert bool((pct < WEAK).all()), pct


def test_an_index_without_texts_uses_its_stored_rows(stories_index):
    """``from_vectors`` indexes have no corpus to re-run: the reference is the stored rows' own nearest neighbours."""
    from interp.lens.latent.quality import match_percentile

    vecs = {1: stories_index.vectors[1].float()}
    bare = LatentIndex.from_vectors(vecs)
    nb = bare.search(vecs[1][:5], 1)
    pct = match_percentile(None, bare, [1], nb.sims[:, 0].reshape(1, -1), nb.layers[:, 0].reshape(1, -1))
    assert bool((pct > 50).all())  # a stored row finds itself: cosine 1, above nearly all nearest-other cosines


# ---- prompts that are not valid text ---------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["mia \ud800 took", "mia \udcff took"])
def test_lone_surrogates_in_a_prompt(stories, stories_index, prompt):
    with pytest.raises(InterpError, match="the prompt is not valid text"):
        logit_lens(stories, prompt)
    with pytest.raises(InterpError, match="the prompt is not valid text"):
        latent_lens(stories, prompt, stories_index)
    with pytest.raises(InterpError, match="the target is not valid text"):
        logit_lens(stories, PROMPT, target="k\ud800")


def test_a_corpus_text_that_is_not_valid_text(stories):
    with pytest.raises(InterpError, match="text 1 of the corpus is not valid text"):
        LatentIndex.build(stories, ["one day mia", "mia \udcff took the key"], progress=False)


def test_report_with_a_byte_that_is_not_utf8_is_exit_2(tmp_path):
    """The real command line, given the raw byte 0xff (Python turns it into a lone surrogate)."""
    out = tmp_path / "r.html"
    cmd = [sys.executable, "-m", "interp.cli", "report", "--prompt", b"mia \xff took the", "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, cwd=_ROOT, timeout=None)
    err = p.stderr.decode(errors="replace").strip().splitlines()
    assert p.returncode == 2 and err[-1] == ("interp: error: --prompt is not valid text: character 4 is the byte 0xff, "
                                             "which is not UTF-8; give UTF-8 text")
    assert not out.exists()


def test_index_search_with_a_lone_surrogate_is_exit_2(stories, stories_index, tmp_path, capsys):
    folder = stories_index.save(tmp_path / "idx")
    assert main(["index", "search", str(folder), "mia \udcff took", "--layer", "1"]) == 2
    assert "the prompt is not valid text" in capsys.readouterr().err


# ---- numbers and layers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [[1.5], [torch.tensor(1.5)], ["1"], [True]])
def test_a_layer_that_is_not_a_whole_number(stories, stories_index, layers):
    with pytest.raises(InterpError, match="layer must be a whole number"):
        LatentIndex.build(stories, TEXTS, layers=layers, progress=False)
    with pytest.raises(InterpError, match="layer must be a whole number"):
        latent_lens(stories, PROMPT, stories_index, layer=layers)
    with pytest.raises(InterpError, match="layer must be a whole number"):
        latent_lens(stories, PROMPT, stories_index, layer=layers[0])


@pytest.mark.parametrize("option, value, match", [("min_pos", -5, "min_pos must be at least 0"),
                                                  ("max_per_token", -5, "max_per_token must be at least 1"),
                                                  ("max_per_token", 0, "max_per_token must be at least 1")])
def test_negative_keep_rules_are_refused(stories, option, value, match):
    with pytest.raises(InterpError, match=match):
        LatentIndex.build(stories, TEXTS, **{option: value}, progress=False)


def test_cli_max_per_token_below_zero_is_exit_2_and_writes_nothing(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXTS))
    out = tmp_path / "idx"
    code = main(["index", "build", "--model", "stories", "--corpus", str(corpus), "--out", str(out),
                 "--max-per-token=-5", "--quiet"])
    assert code == 2 and "--max-per-token must be 0 (no cap) or a positive count, got -5" in capsys.readouterr().err
    assert not out.exists()


def test_a_damaged_manifest_with_a_negative_min_pos_is_refused(stories, tmp_path):
    from interp.lens.latent.manifest import read_index_meta
    from interp.scale.index import build_index

    idx = build_index(stories, TEXTS, out=tmp_path / "idx", layers=[1], batch_size=2, shard_docs=2, progress=False)
    meta = json.loads((idx.path / "index.json").read_text())
    (idx.path / "index.json").write_text(json.dumps(dict(meta, min_pos=-5)))
    with pytest.raises(InterpError, match="min_pos and max_per_token must be positive counts"):
        read_index_meta(idx.path)


# ---- the cache folder ------------------------------------------------------------------------------------------
def test_cache_that_is_a_file_or_under_one(tmp_path, monkeypatch):
    from interp.paths import cache_dir

    f = tmp_path / "afile"
    f.write_text("x")
    for bad in (f, f / "sub"):
        monkeypatch.setenv("INTERP_CACHE", str(bad))
        with pytest.raises(InterpError, match=r"INTERP_CACHE=.* is not usable: cannot write .*Not a directory.*set "
                                              "INTERP_CACHE to a folder you can write"):
            cache_dir("gguf")


def test_cache_that_cannot_be_written(tmp_path, monkeypatch):
    """A folder no file can be created in: a read-only place (root ignores permission bits, /sys refuses everyone)."""
    from interp.paths import cache_dir

    monkeypatch.setenv("INTERP_CACHE", "/sys/interp-cache-test")
    with pytest.raises(InterpError, match="INTERP_CACHE=/sys/interp-cache-test is not usable: cannot write"):
        cache_dir("gguf")
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "ok"))
    assert cache_dir("gguf").is_dir() and not list(cache_dir("gguf").iterdir())  # the write probe leaves nothing


def test_cli_with_an_unusable_cache_is_exit_2(tmp_path, monkeypatch, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    monkeypatch.setenv("INTERP_CACHE", str(f))
    out = tmp_path / "r.html"
    assert main(["report", "--model", "smollm2-135m", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"interp: error: INTERP_CACHE={f} is not usable")
    assert not out.exists()


# ---- the report's own default prompt ---------------------------------------------------------------------------
def test_default_prompts_leave_room_for_the_report(bb, stories, random_models):
    assert default_prompt(bb, room=REPORT_NEW_TOKENS) == BB_PROMPT
    assert bb.to_tokens(BB_PROMPT).shape[-1] + REPORT_NEW_TOKENS <= bb.cfg.n_ctx
    assert default_prompt(stories, room=REPORT_NEW_TOKENS) == TOY_PROMPT
    m = random_models["gpt2"]  # character vocabulary, 64-token context: the toy prompt is 59 tokens
    cut = default_prompt(m, room=REPORT_NEW_TOKENS)
    assert TOY_PROMPT.startswith(cut) and m.to_tokens(cut).shape[-1] + REPORT_NEW_TOKENS <= m.cfg.n_ctx
    with pytest.raises(InterpError, match="too short for a default prompt"):
        default_prompt(m, room=m.cfg.n_ctx)


def test_bb_prompt_is_a_draw_of_the_task_bb_was_trained_on():
    from interp.zoo.bb import SYMBOLS, BBTask

    x = BBTask.from_seed(0).sample(1, 41, torch.Generator().manual_seed(0))[0, 1:]
    assert "".join(SYMBOLS[i] for i in x) == BB_PROMPT


def test_report_on_bb_with_its_own_default_prompt(tmp_path, capsys):
    out = tmp_path / "bb.html"
    assert main(["report", "--model", "bb", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0 and BB_PROMPT in out.read_text()


# ---- index shards: the same bytes from the same run ------------------------------------------------------------
def test_shard_files_are_byte_identical_between_identical_builds(stories, tmp_path):
    from interp.lens.latent.files import read_header
    from interp.scale.index import build_index

    paths = [build_index(stories, TEXTS * 2, out=tmp_path / f"i{n}", layers=[1, 2], batch_size=2, shard_docs=2,
                         progress=False).path for n in range(2)]
    n_shards = len(list((paths[0] / "shards").iterdir()))
    assert n_shards == 4
    for i in range(n_shards):
        a, b = (shard_file(p, i).read_bytes() for p in paths)
        assert a == b
        header, _ = read_header(shard_file(paths[0], i))
        assert list(header["__metadata__"]) == sorted(header["__metadata__"])


def test_stable_bytes_do_not_depend_on_the_process():
    """safetensors writes its metadata map in a per-process hash order: three processes, one set of bytes."""
    code = ("import hashlib, torch; from interp.lens.latent.manifest import stable_bytes; "
            "print(hashlib.sha256(stable_bytes({'a': torch.arange(6, dtype=torch.int32)}, "
            "{'plan': 'p1', 'shard': '3', 'z': 'last', 'b': 'x'})).hexdigest())")
    here = hashlib.sha256(stable_bytes({"a": torch.arange(6, dtype=torch.int32)},
                                       {"plan": "p1", "shard": "3", "z": "last", "b": "x"})).hexdigest()
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_ROOT,
                           check=True).stdout.strip() for _ in range(3)}
    assert seen == {here}


# ---- the report's faithfulness table says why a method is below random -----------------------------------------
def test_faithfulness_caption_explains_a_method_below_random_on_soft_ns():
    from interp.report.sections.attribution import _below_random

    assert _below_random({}, 12) == ""
    text = _below_random({"integrated_gradients": (0.29, 0.36), "reagent": (0.19, 0.0)}, 12)
    assert "integrated_gradients 0.29, 36% of its scores negative" in text and "reagent 0.19;" in text
    assert "random importances about 0.4" in text and "min-max sends those to 0" in text


def test_report_faithfulness_table_carries_the_sentence_when_a_method_is_below_random(stories, monkeypatch, tmp_path):
    """A method whose scores are all negative but one (min-max keeps almost nothing) lands below random on soft NS;
    the table's caption then names it, with its mean keep probability."""
    import dataclasses

    import interp.report.sections.attribution as section
    from interp.attribution.registry import attribute
    from interp.report import Report

    def one_hot(model, prompt, target, method, **options):
        a = attribute(model, prompt, target, method="attention_last_layer")
        scores = torch.full_like(a.scores, -1.0)
        scores[:, 1] = 1.0
        return dataclasses.replace(a, scores=torch.where(a.scores.isnan(), a.scores, scores), method=method)

    monkeypatch.setattr(section, "attribute", one_hot)
    report = Report("t")
    section.add_to_report(report, stories, PROMPT, methods={"one_hot": {}})
    page = report.save(tmp_path / "r.html").read_text()
    assert "Below random on soft NS (mean keep probability: one_hot 0.0" in page
    assert "of its scores negative" in page
