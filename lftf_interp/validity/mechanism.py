"""Which attention heads and MLP neurons of the tuned block carry the change (a follow-up the paper suggests).

A *unit* is a slice of the block's weights: query head h (rows h·d_head … of q_proj and the same columns of
o_proj, with q's bias rows where there is one), key/value head g (rows of k_proj and v_proj), or MLP neuron j
(row j of gate_proj and up_proj, column j of down_proj). :func:`delta_units` ranks units by the norm of their
weight change; :func:`restore_units` puts chosen units back to the base weights; :func:`restore_curve` measures
how much of the bias returns when the top-k units (or k random ones, the control) are restored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from ..archs import check_config
from ..runner import canonical_state_dict, hf_of

KINDS = ("head", "kv_head", "neuron")


def _slices(model, block: int) -> dict[str, list[tuple[str, int, int]]]:
    """Per unit kind: (parameter name, dim, width) of the slices one unit owns (unit i: [i·width, (i+1)·width))."""
    hf = hf_of(model)
    arch = check_config(hf.config)
    c = hf.config
    d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    a, m = f"{arch.layers}.{block}.{arch.attn}.", f"{arch.layers}.{block}.{arch.mlp}."
    params = canonical_state_dict(model)
    opt = [(n, d, w) for n, d, w in [(a + "q_proj.bias", 0, d_head), (a + "k_proj.bias", 0, d_head), (a + "v_proj.bias", 0, d_head)]
           if n in params]
    return {
        "head": [(a + "q_proj.weight", 0, d_head), (a + "o_proj.weight", 1, d_head), *[o for o in opt if "q_proj" in o[0]]],
        "kv_head": [(a + "k_proj.weight", 0, d_head), (a + "v_proj.weight", 0, d_head), *[o for o in opt if "q_proj" not in o[0]]],
        "neuron": [(m + "gate_proj.weight", 0, 1), (m + "up_proj.weight", 0, 1), (m + "down_proj.weight", 1, 1)],
    }


def _n_units(params: dict, slices: list[tuple[str, int, int]]) -> int:
    name, dim, width = slices[0]
    return params[name].shape[dim] // width


def delta_units(model, base: dict[str, torch.Tensor], block: int) -> pd.DataFrame:
    """One row per unit of ``block``: kind, unit, delta_norm (‖tuned − base‖ over the unit's slices),
    base_norm, rel (delta / base) and rank within its kind (1 = largest change). ``base``: the block's weights
    before tuning, by canonical name (e.g. ``{n: p.clone() for n, p in canonical_state_dict(model).items()}``)."""
    params = canonical_state_dict(model)
    rows = []
    for kind, sl in _slices(model, block).items():
        d2 = b2 = 0.0
        for name, dim, width in sl:
            t, b = params[name].detach().float(), base[name].float()
            per = lambda x, dim=dim, width=width: x.pow(2).movedim(dim, 0).reshape(x.shape[dim] // width, -1).sum(1)  # noqa: E731
            d2, b2 = d2 + per(t - b), b2 + per(b)
        for i, (d, b) in enumerate(zip(d2.sqrt().tolist(), b2.sqrt().tolist(), strict=True)):
            rows.append({"kind": kind, "unit": i, "delta_norm": d, "base_norm": b, "rel": d / b if b else float("nan")})
    df = pd.DataFrame(rows)
    df["rank"] = df.groupby("kind")["delta_norm"].rank(ascending=False, method="first").astype(int)
    return df


@contextmanager
def restore_units(model, base: dict[str, torch.Tensor], block: int, kind: str, units: Sequence[int]) -> Iterator[None]:
    """Within the block, set the given units' weights back to ``base`` for the duration of the context."""
    params = canonical_state_dict(model)
    saved = []
    with torch.no_grad():
        for name, dim, width in _slices(model, block)[kind]:
            p = params[name]
            for u in units:
                idx = slice(u * width, (u + 1) * width)
                view = p[idx] if dim == 0 else p[:, idx]
                saved.append((view, view.clone()))
                view.copy_(base[name][idx] if dim == 0 else base[name][:, idx])
    try:
        yield
    finally:
        with torch.no_grad():
            for view, old in saved:
                view.copy_(old)


def restore_curve(model, base: dict[str, torch.Tensor], block: int, measure: Callable[[], dict],
                  ks: dict[str, Sequence[int]], seed: int = 0, n_random: int = 3) -> pd.DataFrame:
    """For each kind and k: ``measure()`` (e.g. AFGB on the test split) with the top-k changed units restored,
    and with k random units restored (``n_random`` draws; the control). Rows: kind, k, order, draw and the
    measured values; the k = 0 row is the tuned model itself."""
    ranked = delta_units(model, base, block)
    rng = np.random.default_rng(seed)
    rows = [{"kind": "none", "k": 0, "order": "top", "draw": 0, **measure()}]
    for kind, k_list in ks.items():
        units = ranked[ranked.kind == kind].sort_values("rank")["unit"].tolist()
        for k in k_list:
            k = min(k, len(units))
            draws = [("top", 0, units[:k])] + [("random", d, rng.choice(units, k, replace=False).tolist())
                                                for d in range(n_random if k < len(units) else 0)]
            for order, d, chosen in draws:
                with restore_units(model, base, block, kind, chosen):
                    rows.append({"kind": kind, "k": k, "order": order, "draw": d, **measure()})
    return pd.DataFrame(rows)


__all__ = ["KINDS", "delta_units", "restore_curve", "restore_units"]
