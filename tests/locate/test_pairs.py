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
from lftf_interp.models.runner import Runner


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
    p = make_pairs(
        tiny3,
        ["The man said that", "The nurse said that"],
        ["The chief executive officer said that", "The woman said that"],
        align="drop",
    )
    assert len(p) == 1 and p.n_dropped == 1


def test_metric_is_the_normalised_he_she_logit_difference(tiny3):
    p = hint_swap_pairs(tiny3, split="test", n=3)
    metric, clean, corr = pair_metric(tiny3, p)
    he, she = (tiny3.tokenizer.convert_tokens_to_ids(t) for t in ("Ġhe", "Ġshe"))
    r = Runner(tiny3)
    with torch.no_grad():
        lc, lk = r.last_logits(p.clean), r.last_logits(p.corrupted)
    assert clean == pytest.approx(float((lc[:, he] - lc[:, she]).mean()), abs=1e-5)
    assert corr == pytest.approx(float((lk[:, he] - lk[:, she]).mean()), abs=1e-5)
    assert float(metric(lc)) == pytest.approx(1.0, abs=1e-5) and float(metric(lk)) == pytest.approx(
        0.0, abs=1e-5
    )
    hand = torch.zeros(2, max(he, she) + 1)
    hand[0, he], hand[0, she], hand[1, he], hand[1, she] = 2.0, 0.5, 0.0, 1.0  # differences 1.5 and -1.0
    assert float(logit_diff(he, she)(hand)) == pytest.approx(0.25)
    with pytest.raises(LftfError, match="normalised"):
        normalized_logit_diff(1, 2, 0.5, 0.5)


def test_axis_pairs_rotate_groups_and_the_group_metric_is_the_log_share_difference(tiny3):
    from lftf_interp.data import load_axis
    from lftf_interp.locate import axis_hint_pairs, group_logit_diff, group_pair_metric

    ax = load_axis("religion")
    p = axis_hint_pairs(tiny3, ax, "test", n=10)
    assert (p.df.clean_group != p.df.corrupted_group).all() and p.df.hint_kind.unique().tolist() == [
        "membership"
    ]
    assert len(set(p.df.clean_group)) >= 4 and len(p) == 10
    for c, k in zip(p.df.clean_prompt, p.df.corrupted_prompt, strict=True):  # same template, same subject
        assert c.split(". ", 1)[1] == k.split(". ", 1)[1] and c.split(" is ")[0] == k.split(" is ")[0]
    metric, raw, clean, corr = group_pair_metric(tiny3, p, ax)
    r = Runner(tiny3)
    with torch.no_grad():
        lc, lk = r.last_logits(p.clean).double(), r.last_logits(p.corrupted).double()
    ids = {g.name: tiny3.tokenizer.encode(g.words[0], add_special_tokens=False)[0] for g in ax.groups}
    q = lc.softmax(-1)
    want = [
        float(torch.log(q[i, ids[a]] / q[i, ids[b]]))
        for i, (a, b) in enumerate(zip(p.df.clean_group, p.df.corrupted_group, strict=True))
    ]
    assert clean == pytest.approx(sum(want) / len(want), abs=1e-4)
    assert float(metric(lc)) == pytest.approx(1.0, abs=1e-5) and float(metric(lk)) == pytest.approx(
        0.0, abs=1e-5
    )
    # K = 2, one token per group: exactly the gender metric, logit(he) - logit(she)
    he, she = (tiny3.tokenizer.convert_tokens_to_ids(t) for t in ("Ġhe", "Ġshe"))
    assert float(group_logit_diff([[he], [she]], [0, 0], [1, 1])(lc[:2])) == pytest.approx(
        float(logit_diff(he, she)(lc[:2])), abs=1e-9
    )
    hand = torch.zeros(1, 10, dtype=torch.double)
    hand[0, 1], hand[0, 2], hand[0, 5] = (
        1.0,
        1.0,
        0.0,
    )  # group 0 = tokens {1, 2}: log(2e) - log(1) = 1 + log 2
    assert float(group_logit_diff([[1, 2], [5]], [0], [1])(hand)) == pytest.approx(
        1 + float(torch.log(torch.tensor(2.0)))
    )
