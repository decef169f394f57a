import math

import numpy as np
import pytest
import torch

from lftf_interp.data import load_axis, load_dataset
from lftf_interp.data.external import winobias_pairs
from lftf_interp.data.probesets import gendered_prompts
from lftf_interp.errors import ConfigError
from lftf_interp.metrics.groups import score_prompts
from lftf_interp.models.loading import tiny_model
from lftf_interp.probes.beyond import winobias_parts
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.tune.beyond import _SentencePairs, balanced_pair_loss, sentence_pair_loss
from lftf_interp.tune.scopes import BlockScope
from lftf_interp.tune.train import _kinds


def test_balanced_pair_loss_by_hand():
    logits = torch.log(torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.3, 0.6]]))
    male, female = torch.tensor([0, 2]), torch.tensor([1, 1])
    # row 0: a = 0.6, b = 0.2 → Q = 0.75 / 0.25; row 1: a = 0.6 (id 2), b = 0.3 → Q = 2/3, 1/3
    want = (-math.log(0.75) - math.log(0.25) - math.log(2 / 3) - math.log(1 / 3)) / 2
    assert balanced_pair_loss(logits, male, female).item() == pytest.approx(want, rel=1e-6)
    assert balanced_pair_loss(
        torch.log(torch.tensor([[0.1, 0.1, 0.8]])), torch.tensor([0]), torch.tensor([1])
    ).item() == pytest.approx(
        2 * math.log(2), rel=1e-6
    )  # equal probabilities: the minimum, whatever their mass


def test_leave_one_hint_kind_out_is_disjoint():
    hints = load_dataset("genhint", "train").df
    kept = _kinds(hints, ("name",))
    assert "name" not in set(kept.hint_kind) and len(kept) == (hints.hint_kind != "name").sum()
    test_name = load_dataset("genhint", "test").df.query("hint_kind == 'name'")
    assert set(test_name.prompt).isdisjoint(kept.prompt)
    with pytest.raises(ConfigError, match="do not have"):
        _kinds(hints, ("accent",))
    assert _kinds(hints, ()) is hints


def test_hint_exclude_reaches_training_and_terms_need_gender():
    with pytest.raises(ConfigError, match="train on gendered material; axis .* is not gendered"):
        TuneConfig(block=0, gendered_weight=1.0, axis="religion")
    m = tiny_model(2, seed=0)
    with pytest.raises(ConfigError, match="do not have"):
        tune(m, TuneConfig(block=1, steps=1, hint_weight=0.5, hint_exclude=("accent",), n_val=8))


def test_gendered_term_moves_the_gendered_share():
    m = tiny_model(2, seed=0)
    train = gendered_prompts("train")
    before = score_prompts(m, train.df, load_axis("gender"))["ub"].mean()
    res = tune(
        m,
        TuneConfig(
            block=(0, 1),
            steps=25,
            lr=3e-3,
            batch_size=16,
            gendered_weight=5.0,
            n_val=16,
            eval_every=25,
            restore_best=False,
        ),
    )
    after = score_prompts(m, train.df, load_axis("gender"))["ub"].mean()
    assert "loss_gendered" in res.history and after > before + 0.05
    assert np.isfinite(res.history.loss_gendered.dropna()).all()


def test_winobias_term_reads_dev_prefixes(external_dir):
    m = tiny_model(2, seed=0)
    res = tune(
        m,
        TuneConfig(
            block=1,
            steps=2,
            batch_size=8,
            winobias_weight=1.0,
            n_val=8,
            eval_every=2,
            external=str(external_dir),
        ),
    )
    assert res.history.loss_winobias.dropna().gt(0).all()


def test_winobias_terms_train_on_dev_fit_only_when_asked(external_dir):
    from lftf_interp.data.external import winobias_pairs
    from lftf_interp.tune.beyond import BeyondTemplate
    from lftf_interp.tune.scopes import BlockScope

    for bad in ("test", "dev-select"):
        with pytest.raises(ConfigError, match="only evaluated"):
            TuneConfig(block=1, winobias_weight=1.0, winobias_split=bad)
    m = tiny_model(2, seed=0)
    scope = BlockScope(m, [1])
    for split in ("dev", "dev-fit"):
        cfg = TuneConfig(
            block=1,
            winobias_weight=1.0,
            winobias_sentence_weight=1.0,
            external=str(external_dir),
            winobias_split=split,
        )
        terms = BeyondTemplate(scope, None, m, cfg)
        wanted = winobias_pairs(external_dir / "winobias", split)
        assert len(terms.w_male) == len(wanted) and len(terms.sentences) <= len(wanted)
        assert len(terms.sentences) > 0.9 * len(wanted)
    assert len(winobias_pairs(external_dir / "winobias", "dev-fit")) < 0.5 * len(
        winobias_pairs(external_dir / "winobias", "dev")
    )


def test_sentence_pair_loss_by_hand():
    a, b = torch.log(torch.tensor([0.2, 0.3])), torch.log(torch.tensor([0.05, 0.3]))
    # pair 0: d = log 4 → log(1 + 4) + log(1 + 1/4); pair 1: equal → 2 log 2 (the minimum)
    want = (math.log(5) + math.log(1.25) + 2 * math.log(2)) / 2
    assert sentence_pair_loss(a, b).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_sentence_term_scores_whole_dev_pairs_and_training_balances_them(external_dir):
    m = tiny_model(2, seed=0)
    w = winobias_pairs(external_dir / "winobias", "dev")
    pairs = _SentencePairs(BlockScope(m, [1]), m, w["pro"].tolist(), w["anti"].tolist())
    idx = torch.arange(48)
    with torch.no_grad():
        lp_pro, lp_anti = pairs.logprobs(BlockScope(m, [1]), idx)
    # from the pronoun on, the shared prefix cancels: the difference is the probe's whole-sentence difference
    _, ref = winobias_parts(m, external_dir / "winobias", "dev", n_boot=10)
    assert len(ref) == len(pairs)
    np.testing.assert_allclose((lp_pro - lp_anti).numpy(), ref["d_sentence"].to_numpy()[:48], atol=2e-4)
    before = sentence_pair_loss(lp_pro, lp_anti).item()
    res = tune(
        m,
        TuneConfig(
            block=(0, 1),
            steps=20,
            lr=3e-3,
            batch_size=16,
            winobias_sentence_weight=5.0,
            n_val=8,
            eval_every=20,
            restore_best=False,
            external=str(external_dir),
        ),
    )
    with torch.no_grad():
        after = sentence_pair_loss(*pairs.logprobs(BlockScope(m, [1]), idx)).item()
    assert "loss_winobias_sentence" in res.history and after < before - 0.01


CDA_DOCS = [
    "The clerk said that he would call. The detective told him that his car was ready. The barista thanked her "
    "for the tip. A biologist said that he was late. Nothing here names anyone at all today.",
    "The poet lost his notes at the station. The conductor waved to the men on the platform before he left.",
]


def test_cda_term_balances_swapped_sentences_without_the_template():
    from lftf_interp.data.counterfactual import counterfactual_pairs
    from lftf_interp.models.runner import Runner
    from lftf_interp.models.tokens import encode, first_difference

    m = tiny_model(2, seed=0)
    pairs = counterfactual_pairs(CDA_DOCS, seed=0)
    assert len(pairs) == 5 and not any("biologist" in a for a, _ in pairs)  # a test occupation: never trained
    sp = _SentencePairs(BlockScope(m, [1]), m, [a for a, _ in pairs], [b for _, b in pairs])
    with torch.no_grad():
        got = sp.logprobs(BlockScope(m, [1]), torch.arange(len(sp)))
        runner = Runner(m)
        for i, (a, b) in enumerate(
            pairs
        ):  # log P(sentence from its first differing token), one plain forward
            for k, text in enumerate((a, b)):
                ids = encode(m, text)
                cut = first_difference(encode(m, a), encode(m, b))
                logp = runner.logits(torch.tensor([ids]))[0].log_softmax(-1)
                want = sum(logp[t - 1, ids[t]].item() for t in range(cut, len(ids)))
                assert got[k][i].item() == pytest.approx(want, abs=1e-4)
    before = sentence_pair_loss(*got).item()
    cfg = TuneConfig(
        block=(0, 1),
        steps=20,
        lr=3e-3,
        batch_size=8,
        cda_weight=5.0,
        template_weight=0.0,
        hint_weight=0.0,
        mass_weight=0.0,
        n_val=8,
        eval_every=20,
        restore_best=False,
    )
    res = tune(m, cfg, documents=CDA_DOCS)
    with torch.no_grad():
        after = sentence_pair_loss(*sp.logprobs(BlockScope(m, [1]), torch.arange(len(sp)))).item()
    assert after < before - 0.01 and res.history["loss_cda"].iloc[1:].notna().all()
    h = res.history.iloc[
        1:
    ]  # the template loss is computed but weighted 0: the step's loss is the CDA term's
    assert (h["loss_pronoun"] > 0).all()
    np.testing.assert_allclose(h["loss"], 5.0 * h["loss_cda"], rtol=1e-5)
    with pytest.raises(ConfigError, match="needs neutral text"):
        tune(tiny_model(2, seed=0), cfg)
    with pytest.raises(ConfigError, match="train on gendered material; axis .* is not gendered"):
        TuneConfig(block=0, cda_weight=1.0, axis="religion")
