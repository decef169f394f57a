import numpy as np
import pytest

from lftf_interp.metrics import (
    EvalConfig,
    PronounTargets,
    afgb_per_prompt,
    afgb_score,
    bootstrap_ci,
    summarize,
    ub_per_prompt,
    ub_score,
)


def test_afgb_hand_computed():
    # |0.3-0.1|/0.4 = 0.5 ; |0.2-0.2|/0.4 = 0 ; |0.05-0.45|/0.5 = 0.8  -> mean 1.3/3
    p_he = [0.3, 0.2, 0.05]
    p_she = [0.1, 0.2, 0.45]
    np.testing.assert_allclose(afgb_per_prompt(p_he, p_she), [0.5, 0.0, 0.8])
    assert afgb_score(p_he, p_she) == pytest.approx(1.3 / 3)


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


def test_summarize_matches_formulas():
    import pandas as pd

    b = pd.DataFrame({"afgb": [0.5, 0.0], "mass": [0.4, 0.2], "share_he": [0.75, 0.5]})
    h = pd.DataFrame({"ub": [0.75, 0.25], "mass": [0.8, 0.4]})
    s = summarize(b, h, n_boot=100)
    assert s["afgb"] == pytest.approx(0.25) and s["ub"] == pytest.approx(0.5) and s["mass"] == pytest.approx(0.3)
    assert s["n"] == 2 and s["n_hint"] == 2


def test_configs_validate_and_roundtrip():
    with pytest.raises(ValueError, match="batch_size"):
        EvalConfig(batch_size=0)
    with pytest.raises(ValueError, match="both male and female"):
        PronounTargets(male=(" he",), female=(" he",))
    cfg = EvalConfig(split="validation", targets=PronounTargets((" he", " He"), (" she", " She")))
    assert EvalConfig.from_dict(cfg.to_dict()) == cfg
