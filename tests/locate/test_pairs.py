"""Clean / corrupted pairs and the logit-difference metric."""

import pytest
import torch

from lftf_interp.data import HINTS, TEMPLATES
from lftf_interp.errors import LftfError
from lftf_interp.locate import (
    hint_swap_pairs,
    logit_diff,
    make_pairs,
    normalized_logit_diff,
    pair_metric,
    stereotype_swap_pairs,
)
from lftf_interp.runner import LlamaRunner


def test_stereotype_pairs_have_equal_lengths(tiny3):
    sp = stereotype_swap_pairs(tiny3, split="train", n=4)
    assert sp.clean.shape == sp.corrupted.shape and len(sp) >= 2
    assert (sp.df.clean_occupation != sp.df.corrupted_occupation).all()




def test_hint_pairs_differ_only_in_the_hint_word(tiny3):
    p = hint_swap_pairs(tiny3, split="test", hint_kind="noun", n=3)
    male, female = dict((k, (m, f)) for k, m, f in HINTS)["noun"]
    for c, k, occ in zip(p.df.clean_prompt, p.df.corrupted_prompt, p.df.occupation, strict=True):
        tpl = TEMPLATES[int(p.df.template_id.iloc[0])].format(occupation=occ)
        assert c == male.format(occupation=occ) + " " + tpl and k == female.format(occupation=occ) + " " + tpl
    assert (p.clean != p.corrupted).sum(1).tolist() == [1] * len(p)  # one token differs: " man" vs " woman"
    with pytest.raises(LftfError, match="hint_kind"):
        hint_swap_pairs(tiny3, hint_kind="name")


def test_unequal_lengths_are_named_or_dropped(tiny3):
    with pytest.raises(LftfError, match="Pair 0: .* tokens"):
        make_pairs(tiny3, ["The man said that"], ["The chief executive officer said that"])
    p = make_pairs(tiny3, ["The man said that", "The nurse said that"],
                   ["The chief executive officer said that", "The woman said that"], align="drop")
    assert len(p) == 1 and p.n_dropped == 1


def test_metric_is_the_normalised_he_she_logit_difference(tiny3):
    p = hint_swap_pairs(tiny3, split="test", n=3)
    metric, clean, corr = pair_metric(tiny3, p)
    he, she = (tiny3.tokenizer.convert_tokens_to_ids(t) for t in ("Ġhe", "Ġshe"))
    r = LlamaRunner(tiny3)
    with torch.no_grad():
        lc, lk = r.last_logits(p.clean), r.last_logits(p.corrupted)
    assert clean == pytest.approx(float((lc[:, he] - lc[:, she]).mean()), abs=1e-5)
    assert corr == pytest.approx(float((lk[:, he] - lk[:, she]).mean()), abs=1e-5)
    assert float(metric(lc)) == pytest.approx(1.0, abs=1e-5) and float(metric(lk)) == pytest.approx(0.0, abs=1e-5)
    hand = torch.zeros(2, max(he, she) + 1)
    hand[0, he], hand[0, she], hand[1, he], hand[1, she] = 2.0, 0.5, 0.0, 1.0  # differences 1.5 and -1.0
    assert float(logit_diff(he, she)(hand)) == pytest.approx(0.25)
    with pytest.raises(LftfError, match="normalised"):
        normalized_logit_diff(1, 2, 0.5, 0.5)
