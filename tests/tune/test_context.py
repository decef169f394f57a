import pytest
import torch

from lftf_interp.data import load_dataset
from lftf_interp.errors import ConfigError
from lftf_interp.models.loading import tiny_model
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.tune.context import ContextPrompts, split_tokens, stretch_lengths, stretches
from lftf_interp.tune.scopes import BlockScope
from lftf_interp.tune.train import selection_score

DOCS = [
    " ".join(f"word{i} number {j} of a plain neutral text about weather and roads." for j in range(60))
    for i in range(6)
]


def test_stretch_lengths_are_evenly_spaced_and_stretches_have_them():
    assert stretch_lengths(5, 1024) == [0, 256, 512, 768, 1024]
    assert stretch_lengths(1, 64) == [64]
    m = tiny_model(2, seed=0)
    texts = stretches(m, DOCS, stretch_lengths(4, 60), seed=3)
    assert texts[0] == "" and all(t.endswith("\n\n") for t in texts[1:])
    n = [len(encode(m, t.strip(), start=False)) for t in texts[1:]]
    assert all(abs(a - b) <= 2 for a, b in zip(n, [20, 40, 60], strict=True)), n  # decoding may merge a token
    assert (
        stretches(m, DOCS, stretch_lengths(4, 60), seed=3) == texts
        and stretches(m, DOCS, stretch_lengths(4, 60), seed=4) != texts
    )
    with pytest.raises(ConfigError, match="shorter stretches"):
        stretches(m, ["short text"], [0, 500])


@pytest.mark.parametrize("block", [0, 1])
def test_prompts_after_a_stretch_equal_the_whole_sequence(block):
    """The cached path (stretch keys / values, prompts run from the tuned block) gives the logits of one plain
    forward over stretch + prompt, before and after the tuned weights move (the stretch is recomputed)."""
    m = tiny_model(2, seed=0)
    scope = BlockScope(m, [block])
    prompts = load_dataset("genbias", "train").df["prompt"].tolist()[:6]
    texts = ["", "Rain fell on the town all day.\n\n", stretches(m, DOCS, [40], seed=1)[0]]
    ctx = ContextPrompts(scope, m, texts, prompts, suffixes=[(42, 7)], seed=0)
    runner = Runner(m)
    cache, more = ctx.cache([(42, 7)])

    def whole(k, suffix):
        rows = ctx.rows[k]
        out = []
        for r in rows.tolist():
            ids = encode(m, texts[k] + prompts[r])  # one encoding of the joined text
            out.append(runner.last_logits(torch.tensor([ids + suffix]))[0])
        return rows, torch.stack(out)

    assert sorted(torch.cat(ctx.rows).tolist()) == list(range(len(prompts)))
    for _ in range(2):
        for k in range(len(texts)):
            for c, suffix in ((cache, []), (more[(42, 7)], [42, 7])):
                rows, want = whole(k, suffix)
                got = scope.last_logits(c, rows)
                assert (got - want).abs().max().item() < 1e-4
        with torch.no_grad():  # move the tuned block: the stretch's keys / values must follow
            for p in scope.params.values():
                p.add_(0.05 * torch.randn_like(p))
    with pytest.raises(ValueError, match="one stretch"):
        scope.last_logits(cache, torch.tensor([ctx.rows[0][0], ctx.rows[1][0]]))


def test_context_term_trains_and_is_refused_without_text():
    with pytest.raises(ConfigError, match="method 'block'"):
        TuneConfig(method="lora", context_weight=1.0)
    m = tiny_model(2, seed=0)
    with pytest.raises(ConfigError, match="documents"):
        tune(m, TuneConfig(block=1, steps=1, context_weight=1.0, n_val=8))
    cfg = TuneConfig(
        block=1,
        steps=30,
        lr=3e-3,
        context_weight=1.0,
        context_max=60,
        context_n=4,
        n_val=16,
        eval_every=10,
        hint_weight=0.0,
        mass_weight=0.0,
    )
    res = tune(m, cfg, documents=DOCS)
    h = res.history
    losses = h["loss_context"].dropna()
    assert losses.iloc[-5:].mean() < 0.8 * losses.iloc[:5].mean()
    val = h["val_context_afgb"].dropna()
    assert val.iloc[-1] < val.iloc[0]
    assert res.best_val["val_context_afgb"] == pytest.approx(val.loc[h["step"] == res.best_step].item())


def test_split_tokens_give_the_joined_encoding():
    m = tiny_model(2, seed=0)
    text, prompts = "Rain fell on the town all day.\n\n", ["The nurse said that", "A cook told me that"]
    shared, tails = split_tokens(m, text, prompts)
    for p, t in zip(prompts, tails, strict=True):
        assert shared + t == encode(m, text + p) and t
    assert shared != encode(m, text)  # the blank line before a word is not the blank line that ends a text
    empty, tails = split_tokens(m, "", prompts)
    assert [empty + t for t in tails] == [encode(m, p) for p in prompts]


def test_selection_score_averages_the_template_and_the_context_scores():
    assert selection_score({"val_afgb": 0.2, "val_mass": 0.5}) == 0.2
    assert selection_score({"val_afgb": 0.2, "val_context_afgb": 0.4}) == pytest.approx(0.3)
