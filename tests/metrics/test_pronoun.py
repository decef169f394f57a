import numpy as np
import pandas as pd
import pytest
import torch

from lftf_interp.data import load_axis, load_dataset
from lftf_interp.data.axis import axis_from_dict
from lftf_interp.metrics.groups import EvalConfig, evaluate, prompt_probs, score_prompts, summarize_axis
from lftf_interp.metrics.pronoun import (
    afgb_paper_per_prompt,
    afgb_paper_score,
    afgb_per_prompt,
    afgb_score,
    bootstrap_ci,
    ub_per_prompt,
    ub_score,
)


def test_afgb_hand_computed():
    # |0.3-0.1|/0.4 = 0.5 ; |0.2-0.2|/0.4 = 0 ; |0.05-0.45|/0.5 = 0.8  -> mean 1.3/3
    p_he = [0.3, 0.2, 0.05]
    p_she = [0.1, 0.2, 0.45]
    np.testing.assert_allclose(afgb_per_prompt(p_he, p_she), [0.5, 0.0, 0.8])
    assert afgb_score(p_he, p_she) == pytest.approx(1.3 / 3)


def test_paper_afgb_hand_computed():
    # the paper's form, not renormalised: |0.3-0.1| = 0.2 ; 0 ; |0.05-0.45| = 0.4  -> mean 0.6/3
    p_he, p_she = [0.3, 0.2, 0.05], [0.1, 0.2, 0.45]
    np.testing.assert_allclose(afgb_paper_per_prompt(p_he, p_she), [0.2, 0.0, 0.4])
    assert afgb_paper_score(p_he, p_she) == pytest.approx(0.2)
    # shrinking the he+she mass tenfold divides the paper's AFGB by ten and leaves ours unchanged: a loss that
    # removes pronoun mass (the "sum" loss) lowers the paper's number with no preference removed
    assert afgb_paper_score([0.03], [0.01]) == pytest.approx(afgb_paper_score([0.3], [0.1]) / 10)
    assert afgb_score([0.03], [0.01]) == pytest.approx(afgb_score([0.3], [0.1]))


def test_afgb_bounds_and_scale_invariance():
    assert afgb_score([0.9], [0.0]) == 1.0
    assert afgb_score([0.001], [0.001]) == 0.0
    # only the ratio matters, not the mass
    assert afgb_score([0.02], [0.01]) == pytest.approx(afgb_score([0.6], [0.3]))


def test_ub_hand_computed():
    # he-hinted: 0.6/(0.6+0.2)=0.75 ; she-hinted: 0.1/(0.3+0.1)=0.25 -> mean 0.5
    np.testing.assert_allclose(ub_per_prompt([0.6, 0.3], [0.2, 0.1], ["he", "she"]), [0.75, 0.25])
    assert ub_score([0.6, 0.3], [0.2, 0.1], ["he", "she"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="labels"):
        ub_score([0.5], [0.5], ["they"])


def test_bootstrap_ci_deterministic_and_covers_mean():
    x = np.random.default_rng(0).uniform(size=200)
    lo, hi = bootstrap_ci(x, n_boot=500, seed=3)
    assert (lo, hi) == bootstrap_ci(x, n_boot=500, seed=3)
    assert lo < x.mean() < hi
    # width roughly 2*1.96*sd/sqrt(n)
    assert (hi - lo) == pytest.approx(2 * 1.96 * x.std() / np.sqrt(len(x)), rel=0.25)
    assert bootstrap_ci([0.4] * 10) == (pytest.approx(0.4), pytest.approx(0.4))


def test_a_two_group_axis_carries_the_papers_names_with_their_formulas():
    """On gender the record holds afgb / ub / afgb_paper / share_he / hint_mass beside the axis's own keys."""
    b = pd.DataFrame(
        {
            "bias": [0.5, 0.0],
            "afgb": [0.5, 0.0],
            "afgb_paper": [0.2, 0.0],
            "mass": [0.4, 0.2],
            "share_he": [0.75, 0.5],
            "share_she": [0.25, 0.5],
        }
    )
    h = pd.DataFrame(
        {"hint_following": [0.75, 0.25], "ub": [0.75, 0.25], "mass": [0.8, 0.4], "label": ["he", "she"]}
    )
    s = summarize_axis(b, h, load_axis("gender"), n_boot=100)
    assert s["afgb"] == s["bias"] == pytest.approx(0.25) and s["ub"] == s["hint_following"] == pytest.approx(
        0.5
    )
    assert s["mass"] == pytest.approx(0.3) and s["hint_mass"] == pytest.approx(0.6)
    assert s["afgb_paper"] == pytest.approx(0.1) and s["afgb_paper_ci"][0] <= 0.1 <= s["afgb_paper_ci"][1]
    assert s["share_he"] == pytest.approx(0.625) and s["n"] == 2 and s["n_hint"] == 2
    assert "afgb" not in summarize_axis(b.assign(share_x=0.0), None, _three_groups(), n_boot=100)


def _three_groups():
    return axis_from_dict(
        {
            "name": "three",
            "groups": [{"name": g, "words": [f" {g}"]} for g in ("he", "she", "x")],
            "prompts": {"bias": "genbias"},
        }
    )


def test_configs_validate_and_roundtrip():
    with pytest.raises(ValueError, match="batch_size"):
        EvalConfig(batch_size=0)
    cfg = EvalConfig(axis="religion", split="validation")
    assert EvalConfig.from_dict(cfg.to_dict()) == cfg


# ----------------------------------------------------------------------------- model side


def test_batched_equals_one_at_a_time(tiny_bridge):
    prompts = load_dataset("genhint", "test").prompts[:10] + load_dataset("genbias", "test").prompts[:10]
    one = prompt_probs(tiny_bridge, prompts, batch_size=1)
    for bs in (3, 64):
        many = prompt_probs(tiny_bridge, prompts, batch_size=bs)
        np.testing.assert_allclose(many.p_he, one.p_he, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(many.p_she, one.p_she, rtol=1e-5, atol=1e-9)
    assert (one.p_he > 0).all() and (one.mass < 1).all()


def test_probabilities_match_a_manual_softmax(tiny_bridge):
    from lftf_interp.models.tokens import encode

    p = "The nurse said that"
    with torch.no_grad():
        logits = tiny_bridge(torch.tensor([encode(tiny_bridge, p)]))[0, -1].double()
    probs = logits.softmax(-1)
    axis = axis_from_dict(
        {
            "name": "cased",
            "groups": [{"name": "he", "words": [" he", " He"]}, {"name": "she", "words": [" she"]}],
            "prompts": {"bias": "genbias"},
        }
    )
    got = prompt_probs(tiny_bridge, [p], axis)
    he, He, she = (tiny_bridge.tokenizer.convert_tokens_to_ids(t) for t in ("Ġhe", "ĠHe", "Ġshe"))
    assert got.p_he[0] == pytest.approx((probs[he] + probs[He]).item(), rel=1e-4)
    assert got.p_she[0] == pytest.approx(probs[she].item(), rel=1e-4)


def test_scored_columns_and_evaluate_on_given_prompts(tiny_bridge):
    gender = load_axis("gender")
    hint = load_dataset("genhint", "validation").subset(n=12, seed=0).df
    df = score_prompts(tiny_bridge, hint, gender)
    np.testing.assert_allclose(df.ub, np.where(df.label == "he", df.p_he, df.p_she) / df.mass)
    np.testing.assert_allclose(df.afgb_paper, np.abs(df.p_he - df.p_she))
    data = pd.concat([load_dataset("genbias", "test").subset(n=8).df, hint], ignore_index=True)
    m, b, h = evaluate(tiny_bridge, EvalConfig(n_boot=50), data)
    assert m["afgb_ci"][0] <= m["afgb"] <= m["afgb_ci"][1] and m["n"] == 8 and m["n_hint"] == 12
