"""StereoSet SS / LMS / ICAT: the formulas on hand-built scores, the sentence score against a plain forward."""

import numpy as np
import pandas as pd
import pytest
import torch

from lftf_interp.retain.stereoset import load_stereoset, sentence_scores, split_of_targets, ss_lms_icat


def test_formulas_average_per_target_term():
    rows = [  # target a: stereotype wins 2 of 2; target b: 0 of 1 -> SS = (100 + 0) / 2 = 50
        ("a", 3.0, 1.0, 0.0),
        ("a", 2.0, 1.0, 5.0),
        ("b", 0.0, 1.0, -1.0),
    ]
    d = pd.DataFrame(rows, columns=["target", "score_stereotype", "score_anti-stereotype", "score_unrelated"])
    d["bias_type"] = "race"
    t = ss_lms_icat(d, n_boot=50).set_index("bias_type")
    assert t.loc["race", "ss"] == pytest.approx(50.0)
    # LMS per target: a: item 1 both beat unrelated (1), item 2 neither (0) -> 50; b: both win -> 100; mean 75
    assert t.loc["race", "lms"] == pytest.approx(75.0)
    assert t.loc["race", "icat"] == pytest.approx(75.0 * 50 / 50)
    assert t.loc["overall", "n_items"] == 3 and t.loc["race", "n_targets"] == 2


@pytest.mark.downloads
def test_the_wheel_ships_every_bias_type():
    df = load_stereoset()
    assert len(df) == 2106 and df.groupby("bias_type").size().to_dict() == {
        "gender": 255,
        "profession": 810,
        "race": 962,
        "religion": 79,
    }
    assert (df.context.str.contains("BLANK")).all()


def test_sentence_score_is_the_mean_token_log_prob_of_a_plain_forward(tiny3):
    s = ["The chess player was asian.", "Hello there"]
    got = sentence_scores(tiny3, s)
    tok = tiny3.tokenizer
    for sent, g in zip(s, got, strict=True):
        ids = [tok.eos_token_id, *tok.encode(sent, add_special_tokens=False)]
        with torch.no_grad():
            logp = tiny3(torch.tensor([ids])).double().log_softmax(-1)[0]
        want = np.mean([float(logp[i - 1, ids[i]]) for i in range(1, len(ids))])
        assert g == pytest.approx(want, abs=1e-4)


@pytest.mark.downloads
def test_intersentence_items_and_the_split_by_target_term():
    inter = load_stereoset(kind="intersentence")
    assert len(inter) == 2123 and not inter.context.str.contains("BLANK").any()
    parts = {s: load_stereoset(split=s) for s in ("fit", "select", "test")}
    assert sum(len(p) for p in parts.values()) == 2106
    terms = {s: set(p.target) for s, p in parts.items()}
    assert not (
        terms["fit"] & terms["select"] or terms["fit"] & terms["test"] or terms["select"] & terms["test"]
    )
    assert {s: len(p[p.bias_type == "gender"].target.unique()) for s, p in parts.items()} == {
        "fit": 5,
        "select": 2,
        "test": 3,
    }
    inter_test = load_stereoset(kind="intersentence", split="test")
    assert set(inter_test.target) <= terms["test"] and len(inter_test) > 0
    with pytest.raises(ValueError, match="split must be one of"):
        load_stereoset(split="train")


def test_an_intersentence_score_is_the_sentence_after_its_context(tiny3):
    got = sentence_scores(tiny3, ["They run fast."], ["Many people live in Kenya."])
    tok = tiny3.tokenizer
    head = [tok.eos_token_id, *tok.encode("Many people live in Kenya.", add_special_tokens=False)]
    ids = [*head, *tok.encode("They run fast.", add_special_tokens=False)]
    with torch.no_grad():
        logp = tiny3(torch.tensor([ids])).double().log_softmax(-1)[0]
    want = np.mean([float(logp[i - 1, ids[i]]) for i in range(len(head), len(ids))])
    assert got[0] == pytest.approx(want, abs=1e-4)


def test_split_of_targets_is_the_split_load_stereoset_selects_by():
    split = split_of_targets()
    for s in ("fit", "select", "test"):
        for kind in ("intrasentence", "intersentence"):
            assert (load_stereoset(kind=kind, split=s).target.map(split) == s).all()
    assert split.value_counts().to_dict() == {"fit": 39, "test": 24, "select": 16}


def test_twin_scores_score_each_sentence_about_the_other_group(tiny3, monkeypatch):
    from lftf_interp.retain import stereoset

    items = pd.DataFrame(
        {
            "target": ["mother", "mother", "sister"],
            "bias_type": ["gender"] * 3,
            "context": ["", "", ""],
            "stereotype": ["My mother is caring.", "The nurse is kind.", "Her sister is shy."],
            "anti-stereotype": ["My mother is rude.", "The nurse is mean.", "Her sister is loud."],
            "unrelated": ["My mother is purple.", "The nurse is cup.", "Her sister is seven."],
        }
    )
    monkeypatch.setattr(stereoset, "load_stereoset", lambda *a, **k: items)
    seen = []
    real = stereoset.score_items
    monkeypatch.setattr(stereoset, "score_items", lambda m, f, kind: seen.append(f) or real(m, f, kind))
    out = stereoset.twin_scores(tiny3, "gender", n_boot=50)
    assert (out["n_items"], out["n_twinned"]) == (3, 2)  # "The nurse" names no counterpart word
    assert seen[1]["stereotype"].tolist() == ["My father is caring.", "His brother is shy."]
    for name, frame in zip(("as_written", "twins"), seen, strict=True):
        s = real(tiny3, frame.reset_index(drop=True))
        per = (s["score_stereotype"] > s["score_anti-stereotype"]).astype(float).groupby(s["target"]).mean()
        assert out[name]["ss"] == pytest.approx(100 * per.mean())
