import numpy as np
import pytest
import torch

from lftf_interp.models.loading import tiny_model
from lftf_interp.models.runner import Runner, canonical_state_dict
from lftf_interp.retain import RetainConfig, compare_retention, compute_reference, compute_retention

pytestmark = pytest.mark.downloads

CFG = RetainConfig.small(asdiv=2)


@pytest.fixture(scope="module")
def ref_and_model():
    m = tiny_model(n_layers=3, seed=2)
    return compute_reference(m, CFG, cache_at=[2]), m


def _perturbed(layer: int = 2, scale: float = 0.3):
    m = tiny_model(n_layers=3, seed=2)
    with torch.no_grad():
        w = canonical_state_dict(m)[f"model.layers.{layer}.mlp.down_proj.weight"]
        w.add_(scale * torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
    return m


def test_perplexity_and_mc_against_direct_computation(ref_and_model):
    ref, m = ref_and_model
    runner = Runner(m)
    s = ref.windows[0]
    with torch.no_grad():
        logp = runner.logits(torch.tensor([s.ids]))[0].log_softmax(-1)
    nll = -logp[torch.arange(len(s.ids) - 1), torch.tensor(s.ids[1:])].sum().item()
    assert ref.base["windows"].nll[0] == pytest.approx(nll, rel=1e-4)
    assert ref.base["windows"].n[0] == CFG.window - 1
    # a multiple-choice item by brute force: the choice with the highest summed log-likelihood
    from lftf_interp.models.tokens import encode
    from lftf_interp.retain.tasks import load_mc

    item = load_mc("piqa", 20, CFG.seed)[0]
    lls = []
    for c in item.choices:
        ctx, cont = encode(m, item.context), encode(m, c)
        with torch.no_grad():
            lp = runner.logits(torch.tensor([ctx + cont]))[0].log_softmax(-1)
        lls.append(sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
    got = ref.base["mc"].query("task == 'piqa' and item == 0").acc.item()
    assert got == float(int(np.argmax(lls)) == item.label)


def test_identical_model_has_zero_change(ref_and_model):
    ref, m = ref_and_model
    table = compare_retention(ref, compute_retention(m, ref))
    assert np.allclose(table.change, 0, atol=1e-6) and np.allclose(table.ci_lo, 0, atol=1e-6)


def test_cached_start_equals_full_forward_and_kl_is_exact(ref_and_model):
    ref, _ = ref_and_model
    tuned = _perturbed(layer=2)
    full, cached = compute_retention(tuned, ref), compute_retention(tuned, ref, start=2)
    np.testing.assert_allclose(full["windows"].nll, cached["windows"].nll, rtol=1e-5)
    np.testing.assert_allclose(full["kl"], cached["kl"], rtol=1e-3, atol=1e-6)
    assert (full["mc"].acc == cached["mc"].acc).all()
    # KL(base || tuned) at the strided positions of window 0, directly
    s = ref.windows[0]
    with torch.no_grad():
        b = Runner(ref_and_model[1]).logits(torch.tensor([s.ids]))[0, :-1][:: CFG.kl_stride].log_softmax(-1)
        t = Runner(tuned).logits(torch.tensor([s.ids]))[0, :-1][:: CFG.kl_stride].log_softmax(-1)
    kl = (b.exp() * (b - t)).sum(-1).mean().item()
    assert full["kl"][0] == pytest.approx(kl, rel=2e-2, abs=1e-4)  # base log-probs are stored in float16
    table = compare_retention(ref, full).set_index("metric")
    assert table.loc["kl", "change"] > 0 and table.loc["ppl_all", "change"] != 0


def test_a_block_before_the_cache_is_not_scored_from_the_cache(ref_and_model):
    ref, _ = ref_and_model
    tuned = _perturbed(layer=0)
    a, b = compute_retention(tuned, ref, start=0), compute_retention(tuned, ref)
    np.testing.assert_allclose(a["windows"].nll, b["windows"].nll, rtol=1e-6)
    assert not np.allclose(a["windows"].nll, ref.base["windows"].nll)


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="Unknown corpus"):
        RetainConfig(corpora=("wiki",))
    with pytest.raises(ValueError, match="Unknown task"):
        RetainConfig(tasks={"hellaswag": 10})
    c = RetainConfig.small()
    assert RetainConfig.from_dict(c.to_dict()) == c


def test_reference_roundtrip(ref_and_model, tmp_path):
    from lftf_interp.errors import LftfError
    from lftf_interp.retain import load_reference, save_reference

    ref, _ = ref_and_model
    back = load_reference(save_reference(ref, tmp_path / "ref"), CFG)
    tuned = _perturbed(layer=1)
    a = compare_retention(ref, compute_retention(tuned, ref))
    b = compare_retention(back, compute_retention(tuned, back))
    np.testing.assert_allclose(a.change, b.change, rtol=1e-6, atol=1e-9)
    with pytest.raises(LftfError, match="was made with"):
        load_reference(tmp_path / "ref", RetainConfig.small(asdiv=3))
