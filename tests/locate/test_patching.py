import numpy as np
import pytest
import torch

from lftf_interp.errors import LftfError
from lftf_interp.locate import (
    SITES,
    PatchOptions,
    as_grid,
    check_hook_name,
    hint_swap_pairs,
    make_pairs,
    normalized_logit_diff,
    pair_metric,
    patch_every,
    patch_resid_pre,
    patch_sweep,
    tl_patch,
)
from lftf_interp.locate.reference import TL_HOOK


@pytest.fixture(scope="module")
def pairs(tiny3):
    return hint_swap_pairs(tiny3, split="test", n=3)


@pytest.mark.parametrize("site", SITES)
def test_equals_transformer_lens(tiny3, pairs, site):
    metric, _, _ = pair_metric(tiny3, pairs)
    ours = torch.tensor(as_grid(patch_sweep(tiny3, pairs, metric, site)).values)
    ref = tl_patch(tiny3, pairs, metric, site)
    assert ours.shape == ref.shape == (3, pairs.n_pos)
    assert (ours - ref).abs().max() <= 1e-4
    assert ref.abs().max() > 0.1  # the sweep is not trivially flat


@pytest.mark.parametrize("site", SITES)
def test_by_block_equals_hooked_runs(tiny3, pairs, site):
    metric, _, _ = pair_metric(tiny3, pairs)
    ours = patch_sweep(tiny3, pairs, metric, site, per_position=False)
    _, cache = tiny3.run_with_cache(pairs.clean)
    for layer in range(3):
        name = f"blocks.{layer}.{TL_HOOK[site]}"
        with torch.no_grad():
            logits = tiny3.run_with_hooks(
                pairs.corrupted, fwd_hooks=[(name, lambda act, hook: cache[hook.name])]
            )
        assert ours.value[layer] == pytest.approx(float(metric(logits)), abs=1e-4)


def test_clean_into_clean_is_one_and_corrupt_into_corrupt_is_zero(tiny3, pairs):
    metric, _, _ = pair_metric(tiny3, pairs)
    clean = pairs.df.clean_prompt.tolist()
    corr = pairs.df.corrupted_prompt.tolist()
    cc = patch_every(tiny3, make_pairs(tiny3, clean, clean), metric)
    kk = patch_every(tiny3, make_pairs(tiny3, corr, corr), metric)
    np.testing.assert_allclose(cc.value, 1.0, atol=1e-4)
    np.testing.assert_allclose(kk.value, 0.0, atol=1e-4)


def test_skipping_noops_changes_nothing(tiny3, pairs):
    metric, _, _ = pair_metric(tiny3, pairs)
    a = patch_resid_pre(tiny3, pairs, metric)
    b = patch_resid_pre(tiny3, pairs, metric, options=PatchOptions(skip_noops=False, batch_size=1))
    # float32 sums in another order when pairs run one at a time. Over torch's kernel sets (default, AVX2,
    # AVX-512), MKL's code paths (this CPU's, AVX2, COMPATIBLE: what other vendors' CPUs get) and one or two
    # threads, scripts/spread.py measured at most 3.4e-5 (values are normalised logit differences, O(1)): 2e-4
    # bounds it 6x over
    np.testing.assert_allclose(a.value, b.value, atol=2e-4)
    # positions before the hint word are a shared prefix: patching them is the corrupted run (value 0). Where the
    # two runs' prefix residuals are bit-equal the patch is skipped (exactly 0); other MKL code paths round the two
    # sequences' prefixes differently in their last bits, so the patch runs and gives 0 up to float32 rounding
    # (4.8e-6 at most, measured as above): 5e-5 bounds it 10x over
    assert (a[a.pos < 3].value.abs() < 5e-5).all()


def test_bad_inputs_are_named(tiny3, pairs):
    metric, _, _ = pair_metric(tiny3, pairs)
    with pytest.raises(LftfError, match="Unknown patching site 'resid_mid'"):
        patch_sweep(tiny3, pairs, metric, site="resid_mid")
    with pytest.raises(LftfError, match="Position"):
        patch_sweep(tiny3, pairs, metric, options=PatchOptions(positions=[pairs.n_pos]))
    with pytest.raises(LftfError, match="Layer"):
        patch_sweep(tiny3, pairs, metric, options=PatchOptions(layers=[3]))
    with pytest.raises(LftfError, match="does not exist"):
        check_hook_name(tiny3, "blocks.0.hook_resid_middle")
    assert check_hook_name(tiny3, "blocks.0.hook_resid_pre")
    with pytest.raises(LftfError, match="normalised"):
        normalized_logit_diff(1, 2, 0.5, 0.5)


def test_jaxtyping_shapes_hold(tiny_bridge):
    from beartype import beartype
    from jaxtyping import jaxtyped

    from lftf_interp.locate.bmi import bmi_from_residuals
    from lftf_interp.models.runner import Runner
    from lftf_interp.models.tokens import encode_batch

    r = Runner(tiny_bridge)
    ids, lengths = encode_batch(tiny_bridge, ["The nurse said that", "The farmer went home"])
    embed = jaxtyped(typechecker=beartype)(r.embed)
    run = jaxtyped(typechecker=beartype)(r.run)
    last = jaxtyped(typechecker=beartype)(r.last_logits)
    x = run(embed(ids))
    assert last(ids, lengths).shape == (2, 49152)
    checked = jaxtyped(typechecker=beartype)(bmi_from_residuals)
    assert checked(x[None, :, -1], x[None, :, -1]).shape == (1,)
    from jaxtyping import TypeCheckError

    with pytest.raises(TypeCheckError):
        checked(x[None, :, -1], x[None, :1, -1])  # batch mismatch is caught


def test_pairs_of_unequal_length_are_aligned_on_the_prompt(tiny3):
    from lftf_interp.locate import group_logit_diff
    from lftf_interp.models.runner import Runner

    clean = [
        "Alex uses the pronouns xe/xem/xyr. Alex was tired, so",
        "Sam uses the pronouns xe/xem/xyr. Sam was tired, so",
    ]
    corr = [c.replace("xe/xem/xyr", "he/him/his") for c in clean]
    with pytest.raises(LftfError, match="tokens but corrupted"):
        make_pairs(tiny3, clean, corr)
    p = make_pairs(tiny3, clean, corr, align="end")
    assert p.offset > 0 and p.n_pos == p.corrupted.shape[1] and p.prefix == [4, 4]  # "Alex uses the pronouns"
    tok = tiny3.tokenizer
    xe, he = tok.encode(" xe", add_special_tokens=False)[0], tok.encode(" he", add_special_tokens=False)[0]
    metric = group_logit_diff([[xe], [he]], [0, 0], [1, 1])
    r = Runner(tiny3)
    df = patch_sweep(tiny3, p, metric, "resid_pre", options=PatchOptions(positions=[-1, -3, 2]))
    with torch.no_grad():
        rc, rk = r.embed(p.clean), r.embed(p.corrupted)
        for layer in range(3):
            hc, hk = r.run(rc, stop=layer), r.run(rk, stop=layer)
            for pos in (
                p.n_pos - 1,
                p.n_pos - 3,
            ):  # the template: clean position pos + offset, counted from the end
                x = hk.clone()
                x[:, pos] = hc[:, pos + p.offset]
                want = float(metric(r.unembed(r.run(x, start=layer)[:, -1])))
                got = df[(df.layer == layer) & (df.pos == pos)].value.iloc[0]
                assert got == pytest.approx(want, abs=1e-5)
            base = float(
                metric(r.unembed(r.run(hk, start=layer)[:, -1]))
            )  # position 2: the shared prefix, a no-op
            assert df[(df.layer == layer) & (df.pos == 2)].value.iloc[0] == pytest.approx(base, abs=1e-5)


@pytest.mark.parametrize("max_rows", [1, 6, 9])
def test_unembedding_in_groups_gives_each_runs_value(tiny3, pairs, max_rows):
    from lftf_interp.locate.patching import _unembed_values
    from lftf_interp.models.runner import Runner

    runner = Runner(tiny3)
    metric, _, _ = pair_metric(tiny3, pairs)
    torch.manual_seed(0)
    finals = [torch.randn(len(pairs), tiny3.cfg.d_model) for _ in range(4)]  # one run per item, 2 or 3 a call
    one_by_one = [float(metric(runner.unembed(f)[:, None])) for f in finals]
    # values reach ~57 (normalised differences of random finals' logits); one matmul over 2-9 rows sums in
    # another order than one over 3: at most 2.1e-6 relative over the kernel sets, MKL code paths and thread counts
    # of scripts/spread.py, so 2e-5 relative bounds it 10x over; a row given another run's value is off by O(1)
    got = _unembed_values(runner, metric, finals, max_rows=max_rows)
    assert got == pytest.approx(one_by_one, rel=2e-5, abs=1e-6)
    assert len(set(one_by_one)) == 4
