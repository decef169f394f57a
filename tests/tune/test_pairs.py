import math

import pandas as pd
import pytest
import torch

from lftf_interp.data import load_axis
from lftf_interp.data.counterfactual import swap_counterparts
from lftf_interp.errors import ConfigError
from lftf_interp.metrics.pairs import continuation_logliks
from lftf_interp.models.loading import tiny_model
from lftf_interp.retain.stereoset import pair_material
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.tune.pairs import ItemSet, PairTerms, SentenceSet, check_pairs, margin_loss
from lftf_interp.tune.scopes import BlockScope, FullScope

ITEMS = pd.DataFrame(
    {
        "context": ["", "", "My neighbour came over.", "", ""],
        "stereotype": [
            "The nurse was gentle.",
            "He fixed the car quickly.",
            "She baked a cake.",
            "Men are strong.",
            "Girls like dolls.",
        ],
        "anti-stereotype": [
            "The nurse was rude.",
            "She fixed the car quickly.",
            "He baked a cake.",
            "Men are weak.",
            "Girls like trucks.",
        ],
        "unrelated": [
            "The nurse was purple.",
            "Fish fixed the car quickly.",
            "Cloud baked a cake.",
            "Men are cup.",
            "Girls like seven.",
        ],
        "split": ["fit", "fit", "fit", "select", "select"],
    }
)


@pytest.mark.parametrize("scope_of", [lambda m: BlockScope(m, [1]), FullScope])
def test_sentence_scores_are_the_evaluated_mean_token_log_probs(scope_of):
    m = tiny_model(2, seed=0)
    scope = scope_of(m)
    sents = SentenceSet(scope, m, ITEMS["context"].tolist(), ITEMS["stereotype"].tolist())
    got = sents.scores(scope, torch.tensor([2, 0, 3])).detach().numpy()
    want = continuation_logliks(m, ITEMS["context"].tolist(), ITEMS["stereotype"].tolist(), per_token=True)
    assert got == pytest.approx(want[[2, 0, 3]], rel=1e-5)


def test_margin_loss_by_hand():
    s = {
        "stereotype": torch.tensor([-2.0, -1.0]),
        "anti-stereotype": torch.tensor([-3.0, -1.5]),
        "unrelated": torch.tensor([-4.0, -1.0]),
    }
    base = torch.tensor([[1.0, 1.5], [0.5, 0.5]])
    # margins now: [[2, 1], [0, -0.5]]; shortfalls relu(base - m): [[0, 0.5], [0.5, 1.0]]
    assert margin_loss(s, base).item() == pytest.approx((0.25 + 0.25 + 1.0) / 4)


def test_pair_material_is_fit_and_select_of_the_axis_type():
    df = pair_material(TuneConfig(block=0, pair_weight=1.0, pair_kinds=("intrasentence", "intersentence")))
    assert set(df["split"]) == {"fit", "select"} and set(df["bias_type"]) == {"gender"}
    assert set(df["kind"]) == {"intrasentence", "intersentence"}
    assert (df.loc[df.kind == "intrasentence", "context"] == "").all()
    assert (df.loc[df.kind == "intersentence", "context"] != "").all()
    twins = df["twin_stereotype"].dropna()
    assert 0.5 < len(twins) / len(df) <= 1  # most gender sentences name a counterpart word
    assert df.loc[twins.index[0], "stereotype"] != twins.iloc[0]
    assert set(pair_material(TuneConfig(block=0, lms_weight=1.0, axis="religion"))["bias_type"]) == {
        "religion"
    }
    assert pair_material(TuneConfig(block=0)) is None
    with pytest.raises(ConfigError, match="pair_kinds"):
        TuneConfig(block=0, pair_kinds=("crows",))


def test_pair_material_is_checked():
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['unrelated'\]"):
        check_pairs(ITEMS.drop(columns="unrelated"))
    with pytest.raises(ConfigError, match="test items are only ever evaluated"):
        check_pairs(ITEMS.assign(split="test"))
    with pytest.raises(ConfigError, match="no select items"):
        check_pairs(ITEMS.assign(split="fit"))
    with pytest.raises(ConfigError, match="needs sentence pairs"):
        tune(tiny_model(2, seed=0), TuneConfig(block=1, steps=1, pair_weight=1.0))


def test_pair_term_equalises_the_pairs_it_trains_on():
    m = tiny_model(2, seed=0)
    fit = ITEMS[ITEMS.split == "fit"].reset_index(drop=True)

    def gaps() -> torch.Tensor:
        scope = BlockScope(m, [1])
        s = ItemSet(scope, m, fit).scores(scope, torch.arange(len(fit)), ("stereotype", "anti-stereotype"))
        return (s["stereotype"] - s["anti-stereotype"]).detach()

    before = gaps()
    cfg = TuneConfig(
        block=1,
        steps=30,
        lr=3e-3,
        pair_weight=1.0,
        lms_weight=1.0,
        template_weight=0.0,
        hint_weight=0.0,
        mass_weight=0.0,
        n_val=8,
        batch_size=4,
    )
    res = tune(m, cfg, pairs=ITEMS)
    after = gaps()
    assert after.abs().mean() < 0.5 * before.abs().mean()
    h = res.history
    assert {"loss_pair", "loss_lms", "val_pair"} <= set(h.columns)
    assert h["loss_pair"].dropna().iloc[-1] < h["loss_pair"].dropna().iloc[0]
    assert h["loss_pair"].dropna().min() >= 2 * math.log(2) - 1e-6  # the balanced loss's minimum
    assert h["val_pair"].dropna().isin([0.0, 1.0]).all()  # two select items: share 0, 1/2 or 1


def test_validation_reads_the_select_items_only():
    m = tiny_model(2, seed=0)
    scope = BlockScope(m, [1])
    terms = PairTerms(scope, m, TuneConfig(block=1, pair_weight=1.0), ITEMS)
    assert (terms.fit.n, terms.select.n) == (3, 2)
    select = ITEMS.iloc[3:]
    s = continuation_logliks(
        m, [*select["context"]] * 2, [*select["stereotype"], *select["anti-stereotype"]], per_token=True
    )
    share = float((s[:2] > s[2:]).mean())
    assert terms.validate()["val_pair"] == pytest.approx(abs(2 * share - 1))


def test_swap_term_makes_each_sentence_as_likely_as_its_twin():
    m = tiny_model(2, seed=0)
    pairs = load_axis("gender").counterparts
    items = ITEMS.assign(
        **{
            f"twin_{k}": [swap_counterparts(x, pairs) for x in ITEMS[k]]
            for k in ("stereotype", "anti-stereotype")
        }
    )
    fit = items[
        (items.split == "fit") & items["twin_stereotype"].notna() & items["twin_anti-stereotype"].notna()
    ]
    assert len(fit) == 2  # "The nurse was ..." names no counterpart

    def gaps() -> torch.Tensor:
        scope = BlockScope(m, [1])
        cols = {"a": "stereotype", "b": "anti-stereotype"}
        s = ItemSet(scope, m, fit, cols).scores(scope, torch.arange(len(fit)), ("a", "b"))
        t = ItemSet(scope, m, fit, {k: f"twin_{c}" for k, c in cols.items()}).scores(
            scope, torch.arange(len(fit)), ("a", "b")
        )
        return torch.cat([s["a"] - t["a"], s["b"] - t["b"]]).detach()

    before = gaps()
    cfg = TuneConfig(
        block=1,
        steps=30,
        lr=3e-3,
        restore_best=False,  # the last step: validation reads the stereotype's lead, not the twins
        swap_weight=1.0,
        template_weight=0.0,
        hint_weight=0.0,
        mass_weight=0.0,
        n_val=8,
        batch_size=4,
    )
    res = tune(m, cfg, pairs=items)
    assert gaps().abs().mean() < 0.5 * before.abs().mean()
    assert "loss_swap" in res.history and "loss_pair" not in res.history
    with pytest.raises(ConfigError, match="declares no counterparts"):
        TuneConfig(block=1, swap_weight=1.0, axis="religion")
    with pytest.raises(ConfigError, match="needs pair material with"):
        tune(m, cfg, pairs=ITEMS)
