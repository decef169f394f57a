import pytest
import torch

from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.probes import RestorePlan, delta_units, restore_curve, restore_units
from lftf_interp.probes.mechanism import _slices


def _perturbed(model, block):
    """Base weights, then: query head 1 (q rows + o columns) changed by 0.5, neuron 3 by 0.2, neuron 5 by 0.1."""
    base = {n: p.detach().clone() for n, p in canonical_state_dict(model).items()}
    p = canonical_state_dict(model)
    d_head = p[_slices(model, block)["head"][0][0]].shape[0] // model.cfg.n_heads
    pre = f"model.layers.{block}."
    with torch.no_grad():
        p[pre + "self_attn.q_proj.weight"][d_head : 2 * d_head] += 0.5
        p[pre + "self_attn.o_proj.weight"][:, d_head : 2 * d_head] += 0.5
        p[pre + "mlp.gate_proj.weight"][3] += 0.2
        p[pre + "mlp.down_proj.weight"][:, 5] += 0.1
    return base, d_head


def test_delta_units_rank_the_changed_units(tiny3):
    base, d_head = _perturbed(tiny3, 1)
    try:
        u = delta_units(tiny3, base, 1)
        heads = u[u.kind == "head"].set_index("unit")
        d_model = tiny3.cfg.d_model
        assert heads.loc[1, "delta_norm"] == pytest.approx(0.5 * (2 * d_head * d_model) ** 0.5, rel=1e-5)
        assert heads.loc[1, "rank"] == 1 and heads.drop(1)["delta_norm"].max() == 0
        neurons = u[u.kind == "neuron"].set_index("unit")
        assert neurons.loc[3, "delta_norm"] == pytest.approx(0.2 * d_model**0.5, rel=1e-5)
        assert list(neurons.sort_values("rank").index[:2]) == [3, 5]
        assert (u[u.kind == "kv_head"].delta_norm == 0).all()
    finally:
        with torch.no_grad():
            for n, p in canonical_state_dict(tiny3).items():
                p.copy_(base[n])


def test_restore_units_is_exact_and_temporary(tiny3):
    base, d_head = _perturbed(tiny3, 1)
    d_model = tiny3.cfg.d_model
    try:
        tuned = {n: p.detach().clone() for n, p in canonical_state_dict(tiny3).items()}
        with restore_units(tiny3, base, 1, "head", [1]), restore_units(tiny3, base, 1, "neuron", [3, 5]):
            for n, p in canonical_state_dict(tiny3).items():
                assert torch.equal(p, base[n]), n
        for n, p in canonical_state_dict(tiny3).items():
            assert torch.equal(p, tuned[n]), n
        curve = restore_curve(
            tiny3,
            base,
            1,
            lambda: {"x": float(sum(p.sum() for p in canonical_state_dict(tiny3).values()))},
            RestorePlan({"head": [1], "neuron": [1, 2]}, n_random=2),
        )
        assert len(curve) == 1 + (1 + 2) + 2 * (1 + 2)
        full = float(sum(p.sum() for p in base.values()))
        top = curve[(curve.order == "top") & (curve.kind == "neuron") & (curve.k == 2)].x.iloc[0]
        head = curve[(curve.order == "top") & (curve.kind == "head")].x.iloc[0]
        # restoring neurons 3 and 5 leaves only head 1's change (q rows + o columns, +0.5 each) …
        assert top - full == pytest.approx(0.5 * 2 * d_head * d_model, rel=1e-3)
        # … and restoring head 1 leaves the neurons' (gate row 3 +0.2, down column 5 +0.1)
        assert head - full == pytest.approx(0.3 * d_model, rel=1e-3)
        assert curve.x.iloc[0] - full == pytest.approx(0.5 * 2 * d_head * d_model + 0.3 * d_model, rel=1e-3)
    finally:
        with torch.no_grad():
            for n, p in canonical_state_dict(tiny3).items():
                p.copy_(base[n])


def _hf_last(hf, ids, block):
    """Hugging Face's last-token logits for one prompt, and what it saw: ``mlp`` (block's MLP output after any
    post-norm) and ``resid`` (the final norm's input)."""
    layer, seen = hf.model.layers[block], {}
    post = getattr(layer, "post_feedforward_layernorm", None)
    hooks = [
        (post or layer.mlp).register_forward_hook(lambda m, a, o: seen.__setitem__("mlp", o)),
        hf.model.norm.register_forward_hook(lambda m, a, o: seen.__setitem__("resid", a[0])),
    ]
    try:
        logits = hf(torch.tensor([ids])).logits[0, -1]
    finally:
        for h in hooks:
            h.remove()
    return logits, seen


@pytest.mark.parametrize(
    "arch,overrides",
    [("llama", {}), ("llama", {"attention_bias": True, "mlp_bias": True}), ("gemma3_text", {})],
)
def test_unit_dla_adds_up_to_hugging_face_activations_and_logits(arch, overrides):
    from lftf_interp.models.loading import hf_model, tiny_model
    from lftf_interp.models.tokens import encode, target_ids
    from lftf_interp.probes.mechanism import unit_dla

    model = tiny_model(n_layers=3, arch=arch, seed=2, **overrides)
    hf, block = hf_model(model), 1
    prompts = ["The nurse said that", "A mechanic thinks", "Yesterday the tall surgeon told us that"]
    d = unit_dla(model, block, prompts, batch_size=2)  # two batches, one padded
    norm = hf.model.norm
    he, she = target_ids(model, [" he"]), target_ids(model, [" she"])
    for i, p in enumerate(prompts):
        logits, seen = _hf_last(hf, encode(model, p), block)
        # the model's own logit difference …
        assert d["logit_diff"][i].item() == pytest.approx((logits[he[0]] - logits[she[0]]).item(), abs=1e-4)
        # … and the MLP's direct effect: its output (after any post-norm) through the frozen final norm
        r = seen["resid"][0, -1].float()
        w = norm.weight.float() + (1.0 if arch == "gemma3_text" else 0.0)
        d_fin = (
            (hf.lm_head.weight[he[0]] - hf.lm_head.weight[she[0]]).float()
            * w
            * torch.rsqrt(r.pow(2).mean() + hf.config.rms_norm_eps)
        )
        assert d["mlp"][i].item() == pytest.approx(
            (d_fin * seen["mlp"][0, -1].float()).sum().item(), abs=1e-4
        )
    # units add up exactly to their sub-layer (plus its bias term, zero without one)
    torch.testing.assert_close(d["neuron"].sum(-1) + d["mlp_bias"], d["mlp"], atol=1e-4, rtol=0)
    torch.testing.assert_close(d["head"].sum(-1) + d["attn_bias"], d["attn"], atol=1e-4, rtol=0)
    assert d["head"].shape == (3, model.cfg.n_heads) and d["acts"].shape[1] == d["neuron"].shape[1]
    if not overrides:
        assert d["mlp_bias"].abs().max() == 0 and d["attn_bias"].abs().max() == 0
    else:
        assert d["mlp_bias"].abs().max() > 0 and d["attn_bias"].abs().max() > 0


def test_attribution_change_on_hand_computed_numbers():
    from lftf_interp.probes.mechanism import attribution_change

    def dla(ld, neuron, head, acts):
        neuron, head = torch.tensor(neuron), torch.tensor(head)
        return {
            "logit_diff": torch.tensor(ld),
            "neuron": neuron,
            "head": head,
            "mlp": neuron.sum(-1),
            "attn": head.sum(-1),
            "acts": torch.tensor(acts),
            "z": torch.zeros(len(ld), 1, 2),
        }

    # prompt 0 prefers he (+2), prompt 1 prefers she (−1): the sign turns every effect towards that preference
    before = dla([2.0, -1.0], [[1.0, 0.0], [-1.0, 0.5]], [[0.0], [0.0]], [[1.0, 2.0], [3.0, 4.0]])
    after = dla([1.0, -0.5], [[0.5, 0.0], [0.0, 0.5]], [[0.0], [0.0]], [[0.5, 2.0], [1.0, 4.0]])
    units, s = attribution_change(before, after, top={"neuron": (1, 2)})
    n = units[units.kind == "neuron"].set_index("unit")
    assert n.loc[0, "dla_before"] == pytest.approx(1.0) and n.loc[0, "dla_after"] == pytest.approx(0.25)
    assert n.loc[1, "dla_before"] == pytest.approx(-0.25) and n.loc[1, "dla_change"] == pytest.approx(0.0)
    assert n.loc[0, "act_change"] == pytest.approx((0.5 + 2.0) / 2) and n.loc[1, "act_change"] == 0
    assert n.loc[0, "rank"] == 1
    assert s["logit_diff_before"] == pytest.approx(1.5) and s["logit_diff_after"] == pytest.approx(0.75)
    assert s["mlp_direct_before"] == pytest.approx(0.75) and s["mlp_direct_after"] == pytest.approx(0.0)
    assert s["mlp_direct_share_of_change"] == pytest.approx(
        1.0
    )  # the whole change is the MLP's direct effect
    assert s["neuron_top_share_of_change"] == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}
    with pytest.raises(Exception, match="same prompts"):
        attribution_change(before, dla([1.0], [[0.0, 0.0]], [[0.0]], [[0.0, 0.0]]))


def test_attribution_finds_the_changed_neuron_and_ranks_a_restore(tiny3):
    from lftf_interp.probes.mechanism import attribution_change, unit_dla

    prompts = ["The nurse said that", "The engineer said that", "A teacher thinks"]
    last = tiny3.cfg.n_layers - 1
    before = unit_dla(tiny3, last, prompts)
    base = {n: p.detach().clone() for n, p in canonical_state_dict(tiny3).items()}
    try:
        with torch.no_grad():
            canonical_state_dict(tiny3)[f"model.layers.{last}.mlp.up_proj.weight"][7] *= 3.0
        units, _ = attribution_change(before, unit_dla(tiny3, last, prompts))
        n = units[units.kind == "neuron"].set_index("unit")
        assert n.loc[7, "rank"] == 1 and n.loc[7, "act_change"] > 0
        assert (n.drop(7)["act_change"] == 0).all() and (units[units.kind == "head"].act_change == 0).all()

        # restore by attribution rank, beside the weight-change ranking; skip what a resumed run already has
        def measure():
            return {"x": float(canonical_state_dict(tiny3)[f"model.layers.{last}.mlp.up_proj.weight"].sum())}  # noqa: E731

        curve = restore_curve(
            tiny3,
            base,
            last,
            measure,
            RestorePlan({"neuron": [1]}, n_random=1),
            rankings={"top": delta_units(tiny3, base, last), "top-dla": units},
        )
        assert set(curve.order) == {"top", "random", "top-dla"} and len(curve) == 4
        full = float(base[f"model.layers.{last}.mlp.up_proj.weight"].sum())
        assert curve[curve.order == "top-dla"].x.iloc[0] == pytest.approx(full, rel=1e-5)
        again = restore_curve(
            tiny3,
            base,
            last,
            measure,
            RestorePlan({"neuron": [1]}, n_random=1),
            rankings={"top": delta_units(tiny3, base, last), "top-dla": units},
            skip={("neuron", 1, "top"), ("neuron", 1, "random")},
        )
        assert list(again.order) == ["top", "top-dla"] and list(again.k) == [0, 1]
    finally:
        with torch.no_grad():
            for n_, p in canonical_state_dict(tiny3).items():
                p.copy_(base[n_])


@pytest.mark.parametrize("arch,overrides", [("llama", {}), ("gemma3_text", {})])
def test_sublayer_dla_matches_hugging_face_components_and_logits(arch, overrides):
    from lftf_interp.models.loading import hf_model, tiny_model
    from lftf_interp.models.tokens import encode, target_ids
    from lftf_interp.probes import sublayer_dla

    model = tiny_model(n_layers=3, arch=arch, seed=4, **overrides)
    hf = hf_model(model)
    prompts = ["The nurse said that", "Yesterday the tall surgeon told us that"]
    d = sublayer_dla(model, prompts, batch_size=1)
    assert d["components"] == ["embed", "attn0", "mlp0", "attn1", "mlp1", "attn2", "mlp2"]
    he, she = target_ids(model, [" he"]), target_ids(model, [" she"])
    for i, p in enumerate(prompts):
        logits, seen = _hf_last(hf, encode(model, p), 1)
        assert d["logit_diff"][i].item() == pytest.approx((logits[he[0]] - logits[she[0]]).item(), abs=1e-4)
        # the components add up to the final residual, and block 1's MLP component is its HF output
        torch.testing.assert_close(d["out"][i].sum(0), seen["resid"][0, -1].float(), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(d["out"][i, 4], seen["mlp"][0, -1].float(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(d["effect"].sum(-1), d["logit_diff"], atol=1e-5, rtol=0)


def test_path_change_on_hand_computed_numbers_and_a_perturbed_block(tiny3):
    from lftf_interp.probes import path_change, sublayer_dla

    # two prompts, two components, d_model 2: prompt 0 prefers he, prompt 1 she (the sign flips its terms)
    before = {
        "components": ["embed", "attn0"],
        "d": torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
        "out": torch.tensor([[[2.0, 0.0], [1.0, 0.0]], [[-1.0, 0.0], [-1.0, 0.0]]]),
    }
    after = {
        "components": ["embed", "attn0"],
        "d": torch.tensor([[0.5, 0.0], [1.0, 0.0]]),
        "out": torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[-1.0, 0.0], [0.0, 0.0]]]),
    }
    for x in (before, after):
        x["effect"] = (x["d"][:, None] * x["out"]).sum(-1)
        x["logit_diff"] = x["effect"].sum(-1)
    frame, s = path_change(before, after)  # signed logit diff: (3 + 2) / 2 = 2.5 → (1 + 1) / 2 = 1.0
    assert s["logit_diff_before"] == pytest.approx(2.5) and s["logit_diff_after"] == pytest.approx(1.0)
    f = frame.set_index("component")
    # embed: own 0; scale (0.5 − 1)·2 on prompt 0 → −0.5 mean. attn0: own 0.5·(−1) and −1·(+1) signed → −1.0
    assert f.loc["embed", "own"] == 0 and f.loc["embed", "scale"] == pytest.approx(-0.5)
    assert f.loc["attn0", "own"] == pytest.approx((-0.5 + -1.0) / 2) and f.loc[
        "attn0", "scale"
    ] == pytest.approx(-0.25)
    assert frame["change"].sum() == pytest.approx(-1.5) and frame["own_share"].sum() + s[
        "scale_share"
    ] == pytest.approx(1.0)
    with pytest.raises(Exception, match="same model and prompts"):
        path_change(before, {**after, "components": ["embed", "mlp0"]})

    # a real model with only block 1 changed: nothing before block 1 changes its own output
    base, _ = _perturbed(tiny3, 1)
    prompts = ["The nurse said that", "A mechanic thinks"]
    try:
        tuned = sublayer_dla(tiny3, prompts)
    finally:
        with torch.no_grad():
            for n, p in canonical_state_dict(tiny3).items():
                p.copy_(base[n])
    frame, s = path_change(sublayer_dla(tiny3, prompts), tuned)
    f = frame.set_index("component")
    assert f.loc[["embed", "attn0", "mlp0"], "own"].abs().max() == 0
    assert f.loc["attn1", "own"] != 0 and f.loc["mlp2", "own"] != 0  # the change, and what carries it on
    assert frame["change"].sum() == pytest.approx(s["logit_diff_after"] - s["logit_diff_before"], abs=1e-5)
