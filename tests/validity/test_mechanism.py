import pytest
import torch

from lftf_interp.runner import canonical_state_dict
from lftf_interp.validity import delta_units, restore_curve, restore_units
from lftf_interp.validity.mechanism import _slices


def _perturbed(model, block):
    """Base weights, then: query head 1 (q rows + o columns) changed by 0.5, neuron 3 by 0.2, neuron 5 by 0.1."""
    base = {n: p.detach().clone() for n, p in canonical_state_dict(model).items()}
    p = canonical_state_dict(model)
    d_head = p[_slices(model, block)["head"][0][0]].shape[0] // model.cfg.n_heads
    pre = f"model.layers.{block}."
    with torch.no_grad():
        p[pre + "self_attn.q_proj.weight"][d_head: 2 * d_head] += 0.5
        p[pre + "self_attn.o_proj.weight"][:, d_head: 2 * d_head] += 0.5
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
        curve = restore_curve(tiny3, base, 1, lambda: {"x": float(sum(p.sum() for p in canonical_state_dict(tiny3).values()))},
                              {"head": [1], "neuron": [1, 2]}, n_random=2)
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
