"""K-group bias score and hint following: hand-computed values, and AFGB / UB for the gender axis."""

import numpy as np
import pandas as pd
import pytest

from lftf_interp.data import load_axis
from lftf_interp.data.axis import axis_from_dict
from lftf_interp.errors import ConfigError
from lftf_interp.metrics.groups import (
    LOW_MASS,
    EvalConfig,
    bias_over_orders,
    bias_per_prompt,
    evaluate,
    group_probs,
    hint_per_prompt,
    summarize_axis,
)
from lftf_interp.metrics.pronoun import afgb_per_prompt


def test_k2_uniform_score_is_afgb_on_the_same_probabilities():
    rng = np.random.default_rng(0)
    p = rng.uniform(1e-4, 0.5, size=(50, 2))
    np.testing.assert_allclose(bias_per_prompt(p, [0.5, 0.5]), afgb_per_prompt(p[:, 0], p[:, 1]), atol=1e-12)


def test_hand_computed_k3_and_reference():
    # Q = (0.5, 0.25, 0.25) vs uniform: TV = ½(|0.5−⅓| + 2|0.25−⅓|) = 1/6; max = 2/3 → 0.25
    assert bias_per_prompt([[0.2, 0.1, 0.1]], [1 / 3] * 3)[0] == pytest.approx(0.25)
    assert bias_per_prompt([[0.3, 0.0, 0.0]], [1 / 3] * 3)[0] == pytest.approx(1.0)  # all mass on one group
    assert bias_per_prompt([[0.1, 0.1, 0.1]], [1 / 3] * 3)[0] == pytest.approx(0.0)
    # reference (0.5, 0.3, 0.2): Q equal to it is fair; max TV is 1 − 0.2
    assert bias_per_prompt([[0.25, 0.15, 0.1]], [0.5, 0.3, 0.2])[0] == pytest.approx(0.0)
    assert bias_per_prompt([[0.0, 0.0, 1.0]], [0.5, 0.3, 0.2])[0] == pytest.approx(1.0)
    np.testing.assert_allclose(
        hint_per_prompt([[0.2, 0.1, 0.1], [0.1, 0.3, 0.0]], ["b", "b"], ["a", "b", "c"]), [0.25, 0.75]
    )
    with pytest.raises(ConfigError, match="not groups"):
        hint_per_prompt([[0.2, 0.1]], ["z"], ["a", "b"])


def test_group_probs_sum_each_groups_words():
    ax = axis_from_dict(
        {
            "name": "t",
            "groups": [{"name": "a", "words": [" a", " A"]}, {"name": "b", "words": [" b"]}],
            "prompts": {"bias": "genbias"},
        }
    )
    lp = np.log([[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(group_probs(lp, ax), [[0.3, 0.3]])


def test_gender_axis_is_afgb_and_ub_of_the_models_own_probabilities(tiny_bridge):
    """The one evaluate path on gender: AFGB, the paper's AFGB and UB from one forward per prompt."""
    import torch

    from lftf_interp.models.tokens import encode

    met, bias, hint = evaluate(tiny_bridge, EvalConfig(split="validation", n_boot=100))
    he, she = (tiny_bridge.tokenizer.encode(w, add_special_tokens=False)[0] for w in (" he", " she"))

    def probs(prompts):
        with torch.no_grad():
            p = [
                tiny_bridge(torch.tensor([encode(tiny_bridge, x)]))[0, -1].double().softmax(-1)
                for x in prompts
            ]
        return np.array([[q[he].item(), q[she].item()] for q in p])

    pb, ph = probs(bias.prompt[:12]), probs(hint.prompt[:12])
    np.testing.assert_allclose(bias.afgb[:12], afgb_per_prompt(pb[:, 0], pb[:, 1]), rtol=1e-4)
    np.testing.assert_allclose(bias.afgb_paper[:12], np.abs(pb[:, 0] - pb[:, 1]), rtol=1e-4, atol=1e-9)
    hinted = np.where(hint.label[:12] == "he", ph[:, 0], ph[:, 1]) / ph.sum(1)
    np.testing.assert_allclose(hint.ub[:12], hinted, rtol=1e-4)
    assert met["afgb"] == met["bias"] == pytest.approx(bias.afgb.mean(), abs=1e-15)
    assert met["ub"] == met["hint_following"] == pytest.approx(hint.ub.mean(), abs=1e-15)
    assert met["afgb_ci"] == met["bias_ci"] and met["share_he"] == met["shares"]["he"]
    assert met["n"] == len(bias) and met["n_hint"] == len(hint) and met["hint_mass"] == hint["mass"].mean()


def test_a_low_group_mass_warns_that_the_score_is_noise(caplog):
    from lftf_interp.data import load_axis

    axis = load_axis("religion")
    n, k = 40, len(axis.group_names)
    rng = np.random.default_rng(0)
    for mass, warns in ((LOW_MASS / 10, True), (0.3, False)):
        p = rng.dirichlet(np.ones(k), n) * mass
        df = pd.DataFrame({f"p_{g}": p[:, i] for i, g in enumerate(axis.group_names)})
        df["mass"] = p.sum(1)
        for i, g in enumerate(axis.group_names):
            df[f"share_{g}"] = p[:, i] / df["mass"]
        df["bias"] = 0.5
        out = summarize_axis(df, None, axis, n_boot=10)
        assert ("warnings" in out) == warns
        if warns:
            assert f"{out['mass']:.2g}" in out["warnings"][0] and "noise" in out["warnings"][0]


def test_bias_over_orders_sets_a_list_position_aside():
    axis = load_axis("race-choice")
    g = axis.group_names  # black, white, asian, hispanic; uniform reference
    # sentence 0 in two orders for one subject, the first-named group getting 0.7 each time: each prompt has
    # TV 0.45 (bias 0.6), but over the two orders black and white get 0.4 each; sentence 1 is even
    rows = [
        {"sentence": 0, "subject": "nurse", **dict(zip(g, (0.7, 0.1, 0.1, 0.1), strict=True))},
        {"sentence": 0, "subject": "nurse", **dict(zip(g, (0.1, 0.7, 0.1, 0.1), strict=True))},
        {"sentence": 1, "subject": "nurse", **dict(zip(g, (0.25, 0.25, 0.25, 0.25), strict=True))},
    ]
    df = pd.DataFrame(
        [{k if k in ("sentence", "subject") else f"share_{k}": v for k, v in r.items()} for r in rows]
    )
    got = bias_over_orders(df, axis)
    # averaged shares (0.4, 0.4, 0.1, 0.1): TV = 0.5 * (0.15 + 0.15 + 0.15 + 0.15) = 0.3, / 0.75 = 0.4
    assert got.tolist() == pytest.approx([0.4, 0.0])
    per_prompt = bias_per_prompt(df[[f"share_{k}" for k in g]].to_numpy(), [0.25] * 4)
    assert per_prompt.tolist() == pytest.approx([0.6, 0.6, 0.0])  # TV 0.45 / 0.75
    df["mass"], df["bias"] = 0.2, per_prompt
    out = summarize_axis(df, None, axis, n_boot=10)
    assert out["bias_over_orders"] == pytest.approx(0.2) and out["n_over_orders"] == 2
    assert "bias_over_orders" not in summarize_axis(df.drop(columns="sentence"), None, axis, n_boot=10)
