"""The weight search: its specs, the choosing rule on hand-made rows, and a search on a tiny model."""

import json

import pandas as pd
import pytest

from lftf_interp.errors import ConfigError
from lftf_interp.experiments.methods import MethodSpec
from lftf_interp.experiments.weights import (
    WeightSearch,
    choose_weight,
    search_table,
    weight_search_to,
    weight_specs,
)


def test_specs_set_the_weight_and_keep_dev_select_unseen():
    base = MethodSpec("lftf-sentence", "block 24 + sentences", {"block": 24, "winobias_sentence_weight": 1.0})
    a, b = weight_specs(base, "winobias_sentence_weight", [0.5, 4])
    assert (
        a.name == "lftf-sentence@winobias_sentence_weight=0.5" and b.tune["winobias_sentence_weight"] == 4.0
    )
    assert (
        a.tune["winobias_split"] == "dev-fit"
        and a.tune["block"] == 24
        and base.tune
        == {
            "block": 24,
            "winobias_sentence_weight": 1.0,
        }
    )
    with pytest.raises(ConfigError, match="Unknown weight 'lr'"):
        weight_specs(base, "lr", [1.0])
    with pytest.raises(ConfigError, match="distinct finite numbers"):
        weight_specs(base, "hint_weight", [1.0, 1.0])
    with pytest.raises(ConfigError, match="distinct finite numbers"):
        weight_specs(base, "hint_weight", [-1.0])
    with pytest.raises(ConfigError, match="trains nothing"):
        weight_specs(MethodSpec("base", "untouched"), "hint_weight", [1.0])


def _rows(**per_weight):
    """(weight, seed) rows from {"w<weight>": [(afgb, ub, kl, pro) per seed]}."""
    return pd.DataFrame(
        [
            dict(weight=float(w[1:]), seed=s, afgb=a, ub=u, kl=k, winobias_select_pro=p)
            for w, seeds in per_weight.items()
            for s, (a, u, k, p) in enumerate(seeds)
        ]
    )


def test_the_rule_takes_the_lowest_dev_select_preference_among_eligible_weights():
    rows = _rows(
        w1=[(0.10, 0.99, 0.010, 0.58), (0.12, 0.97, 0.012, 0.56)],  # means 0.11, 0.98, 0.011, 0.57
        w2=[(0.13, 0.98, 0.015, 0.55), (0.13, 0.96, 0.013, 0.53)],  # 0.13 ≤ 0.11 + 0.03: eligible, 0.54
        w4=[(0.20, 0.99, 0.010, 0.50), (0.18, 0.99, 0.010, 0.50)],  # 0.19 > 0.14: too much template bias
        w8=[(0.11, 0.90, 0.010, 0.49), (0.11, 0.92, 0.010, 0.49)],  # UB 0.91 < 0.95
    )
    by = choose_weight(rows)
    assert by.weight.tolist() == [1.0, 2.0, 4.0, 8.0] and by.seeds.tolist() == [2, 2, 2, 2]
    assert by.afgb.tolist() == pytest.approx([0.11, 0.13, 0.19, 0.11])
    assert by.winobias_select_pro.tolist() == pytest.approx([0.57, 0.54, 0.50, 0.49])
    assert by.eligible.tolist() == [True, True, False, False]
    assert by.chosen.tolist() == [False, True, False, False]
    assert choose_weight(rows, afgb_slack=0.1).chosen.tolist() == [False, False, True, False]
    assert choose_weight(rows, kl_max=0.012).chosen.tolist() == [True, False, False, False]
    assert not choose_weight(rows, ub_min=1.0).chosen.any()
    tie = _rows(w3=[(0.1, 1.0, 0.0, 0.5)], w1=[(0.1, 1.0, 0.0, 0.5)])
    assert choose_weight(tie).chosen.tolist() == [True, False]  # the smaller weight
    md = search_table(by, "winobias_sentence_weight")
    assert "| 2 **chosen** | 2 | 0.130 | 0.970 | 0.0140 | 0.540 | yes |" in md
    rows["winobias_select_pro_ci"] = [[p - 0.1, p + 0.2] for p in rows.winobias_select_pro]
    by = choose_weight(rows)
    assert by.select_lo.tolist() == pytest.approx([0.47, 0.44, 0.40, 0.39])
    assert by.select_hi.tolist() == pytest.approx([0.77, 0.74, 0.70, 0.69])
    assert "| 2 **chosen** | 2 | 0.130 | 0.970 | 0.0140 | 0.540 [0.440, 0.740] | yes |" in search_table(
        by, "w"
    )


@pytest.mark.downloads
@pytest.mark.integration  # a whole pipeline, over 12 s
def test_a_search_on_a_tiny_model_scores_validation_and_dev_select(tiny3_dir, tmp_path):
    with pytest.raises(ConfigError, match="Unknown base method 'nope'"):
        WeightSearch(base="nope")
    with pytest.raises(ConfigError, match="must be >= 1"):
        WeightSearch(budget={"steps": 0})
    budget = dict(steps=2, eval_every=2, batch_size=8, n_train=16, n_val=16)
    search = WeightSearch("hint_weight", (0, 2), "lftf-balanced", budget=budget)
    by = weight_search_to(tiny3_dir, tmp_path, search)
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == [
        "lftf-balanced@hint_weight=0",
        "lftf-balanced@hint_weight=2",
    ]
    assert json.loads((tmp_path / "config.json").read_text())["split"] == "validation"
    assert all(0 <= r["winobias_select_pro"] <= 1 and "kl" in r for r in rows)
    assert by.winobias_select_pro.tolist() == pytest.approx([r["winobias_select_pro"] for r in rows])
    choice = json.loads((tmp_path / "choice.json").read_text())
    assert choice["chosen"] == (by.weight[by.chosen].iloc[0] if by.chosen.any() else None)
    assert choice["term"] == "hint_weight" and choice["weights"] == [0.0, 2.0]
    weight_search_to(tiny3_dir, tmp_path, search)  # resumes: nothing trained again
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 2
