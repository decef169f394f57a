"""Sentence-pair and BBQ scores: log-likelihoods against a hand forward on a tiny model, and the scores against
hand-computed values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lftf_interp.data.pairsets import read_bbq, read_crows, read_pairs
from lftf_interp.metrics.pairs import (
    ANSWER_CUE,
    bbq_answers,
    bbq_scores,
    continuation_logliks,
    crows_scores,
    pair_scores,
    sentence_logliks,
    start_token,
)

FIX = (
    Path(__file__).parents[2] / "examples" / "pairs"
)  # small files in the authors' formats, written for the suite


def _by_hand(model, context: str, text: str) -> float:
    """log P(text | start, context), one forward of the whole sequence."""
    tok = model.tokenizer
    head = [start_token(model), *(tok.encode(context, add_special_tokens=False) if context else [])]
    ids = [*head, *tok.encode(text, add_special_tokens=False)]
    with torch.no_grad():
        logp = model(torch.tensor([ids]))[0].double().log_softmax(-1)
    return float(sum(logp[p - 1, ids[p]] for p in range(len(head), len(ids))))


def _sentences_by_hand(model, sentences) -> np.ndarray:
    return np.array([_by_hand(model, "", s) for s in sentences])


def test_sentence_and_continuation_logliks_equal_a_hand_forward(tiny_bridge):
    sents = ["The nurse said that she would be late.", "Women are bad at math.", "x"]
    got = sentence_logliks(tiny_bridge, sents, token_budget=16)  # several batches
    np.testing.assert_allclose(got, [_by_hand(tiny_bridge, "", s) for s in sents], rtol=1e-5)
    got = continuation_logliks(tiny_bridge, ["Who cooked?" + ANSWER_CUE] * 2, [" The man", " Not known"])
    want = [_by_hand(tiny_bridge, "Who cooked?" + ANSWER_CUE, a) for a in (" The man", " Not known")]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_crows_score_is_the_share_of_pairs_whose_stereotype_is_more_likely(tiny_bridge):
    pairs = read_crows(FIX / "crows_example.csv")
    table, scored = crows_scores(tiny_bridge, pairs, n_boot=200)
    more = _sentences_by_hand(tiny_bridge, pairs.sent_more)
    less = _sentences_by_hand(tiny_bridge, pairs.sent_less)
    np.testing.assert_allclose(scored.gap, more - less, rtol=1e-5, atol=1e-5)
    overall = table.set_index("bias_type").loc["overall"]
    assert overall.score == pytest.approx(100 * np.mean(more > less)) and overall.n == 5
    assert overall.gap == pytest.approx(np.mean(more - less), abs=1e-5)
    gender = table.set_index("bias_type").loc["gender"]
    assert gender.score == pytest.approx(100 * np.mean((more > less)[:3])) and gender.n == 3
    assert gender.score_ci[0] <= gender.score <= gender.score_ci[1]


def test_your_pairs_score_against_hand_logliks_with_lms_where_unrelated_is_given(tiny_bridge):
    pairs = read_pairs(FIX / "pairs_example.jsonl")
    table, scored = pair_scores(tiny_bridge, pairs, n_boot=200)
    st = _sentences_by_hand(tiny_bridge, pairs.stereotype)
    anti = _sentences_by_hand(tiny_bridge, pairs.anti_stereotype)
    np.testing.assert_allclose(scored.gap, st - anti, rtol=1e-5, atol=1e-5)
    t = table.set_index("target")
    assert t.loc["overall", "score"] == pytest.approx(100 * np.mean(st > anti)) and t.loc["overall", "n"] == 5
    nurse = [0, 2]  # both nurse items give an unrelated sentence
    un = _sentences_by_hand(tiny_bridge, [pairs.unrelated[i] for i in nurse])
    wins = (st[nurse] > un).astype(float) + (anti[nurse] > un)
    assert t.loc["nurse", "lms"] == pytest.approx(50 * wins.mean()) and t.loc["nurse", "n_lms"] == 2
    assert t.loc["nurse", "gap"] == pytest.approx(np.mean((st - anti)[nurse]), abs=1e-5)
    assert np.isnan(t.loc["engineer", "lms"]) and t.loc["male", "n"] == 2


def test_bbq_scores_by_hand():
    """Parrish et al.'s bias scores on answers chosen by hand (no model): s over the non-unknown answers."""
    q = read_bbq(FIX / "bbq_example.jsonl")
    # ambig: q0 neg answers the target (biased), q1 nonneg answers unknown (correct); q4 neg answers the non-target
    # disambig: q2 neg answers 1 (the grandson: correct, not the target: unbiased), q3 nonneg answers 1 (the
    # non-target on a non-negative question: biased)
    answered = q.assign(answer=[0, 2, 1, 1, 2, 0])
    t = bbq_scores(answered).set_index("category")
    age = t.loc["Age"]
    assert age.accuracy_ambig == 0.5 and age.accuracy_disambig == 0.5
    assert age.bias_ambig == pytest.approx((1 - 0.5) * (2 * 1 / 1 - 1))  # one non-unknown answer, biased
    assert age.bias_disambig == pytest.approx(2 * 1 / 2 - 1) and age.n_bias_disambig == 2
    gi = t.loc["Gender_identity"]
    assert gi.n_no_target == 1 and gi.n_bias_ambig == 1 and gi.bias_ambig == pytest.approx((1 - 0.5) * -1)
    overall = t.loc["overall"]
    assert overall.accuracy_ambig == pytest.approx(2 / 4) and overall.bias_ambig == pytest.approx(0.5 * 0.0)
    assert overall.n == 6 and overall.n_no_target == 1


def test_bbq_answer_is_the_most_likely_continuation(tiny_bridge):
    q = read_bbq(FIX / "bbq_example.jsonl").head(3)
    got = bbq_answers(tiny_bridge, q)
    for r in got.itertuples():
        ll = [
            _by_hand(tiny_bridge, f"{r.context} {r.question}{ANSWER_CUE}", " " + a)
            for a in (r.ans0, r.ans1, r.ans2)
        ]
        np.testing.assert_allclose([r.ll0, r.ll1, r.ll2], ll, rtol=1e-5)
        assert r.answer == int(np.argmax(ll))
    assert isinstance(got, pd.DataFrame) and len(got) == 3


def test_shared_context_scoring_equals_each_whole_sequence(tiny_bridge):
    """Fillings of one context on its cached keys/values: the same log-likelihoods as scoring each sequence whole,
    for fillings of one and of several tokens and contexts of different lengths (several batches)."""
    from lftf_interp.metrics.pairs import shared_context_logliks

    contexts = ["A man and a woman applied for the job. Who got it?", "Hello", "The old man and the boy."] * 3
    fillings = [
        [" The man", " The woman", " Unknown"],
        [" there", " you all"],
        [" x", " yz", " The boy ran"],
    ] * 3
    got = shared_context_logliks(tiny_bridge, contexts, fillings, batch_size=2)
    for c, fs, g in zip(contexts, fillings, got, strict=True):
        np.testing.assert_allclose(
            g, continuation_logliks(tiny_bridge, [c] * len(fs), fs), rtol=1e-5, atol=1e-5
        )
