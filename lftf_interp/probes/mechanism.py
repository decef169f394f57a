"""Which attention heads and MLP neurons of the tuned block carry the change (a follow-up the paper suggests).

A *unit* is a slice of the block's weights: query head h (rows h·d_head … of q_proj and the same columns of
o_proj, with q's bias rows where there is one), key/value head g (rows of k_proj and v_proj), or MLP neuron j
(row j of gate_proj and up_proj, column j of down_proj). :func:`delta_units` ranks units by the norm of their
weight change; :func:`restore_units` puts chosen units back to the base weights; :func:`restore_curve` measures
how much of the bias returns when the top-k units (or k random ones, the control) are restored.

Attribution (before and after): :func:`unit_dla` splits each head's and neuron's *direct* effect on
logit(he) − logit(she) at the last position (the final norm's and any post-sub-layer norm's scale frozen per
prompt, so the units add up exactly to their sub-layer's direct effect); :func:`attribution_change` signs it
by the base model's preferred pronoun on each prompt, so a positive value pushes towards the base model's bias,
and compares base with tuned weights unit by unit.

Paths (where the rest of the change goes): :func:`sublayer_dla` splits the logit difference into the direct
effects of the embedding and of every block's attention and MLP output (the final norm's scale frozen per prompt,
so they add up exactly); :func:`path_change` splits each component's change between base and tuned weights into
its *own* change (its output moved) and the *scale* change (the final norm's scale moved). Tuning one block, the
own change of any later sub-layer is carried there by the tuned block's output: a decomposition of where the
change reaches the logits, not a causal path test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lftf_interp.errors import ConfigError
from lftf_interp.models.archs import check_config
from lftf_interp.models.runner import Runner, canonical_state_dict, hf_of
from lftf_interp.models.tokens import encode_batch, target_ids

KINDS = ("head", "kv_head", "neuron")


def _fast_arch(config):
    try:
        arch = check_config(config)
    except ConfigError as e:
        raise ConfigError(
            f"The unit-level mechanism probe slices separate q/k/v/o and gate/up/down projections, which only a "
            f"fast row names ({e}). Block-level attribution (`lftf locate`) runs on every model."
        ) from e
    if not arch.separate_units:
        raise ConfigError(
            f"The unit-level mechanism probe slices separate q/k/v/o and gate/up/down projections around RMSNorms, "
            f"in sequence; {arch.model_type}'s blocks are built otherwise (fused or Conv1D projections, LayerNorm, "
            "a parallel block or one norm over all heads). Block-level attribution (`lftf locate`) runs on every "
            "model."
        )
    if cap := getattr(config, "final_logit_softcapping", None):
        raise ConfigError(
            f"The unit-level mechanism probe reads logit differences linearly; this model soft-caps its logits "
            f"(final_logit_softcapping={cap}), so they are not a sum of unit contributions. Block-level "
            "attribution (`lftf locate`) runs on every model."
        )
    return arch


def _slices(model, block: int) -> dict[str, list[tuple[str, int, int]]]:
    """Per unit kind: (parameter name, dim, width) of the slices one unit owns (unit i: [i·width, (i+1)·width))."""
    hf = hf_of(model)
    arch = _fast_arch(hf.config)
    c = hf.config
    d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    a, m = f"{arch.layers}.{block}.{arch.attn}.", f"{arch.layers}.{block}.{arch.mlp}."
    params = canonical_state_dict(model)
    opt = [
        (n, d, w)
        for n, d, w in [
            (a + "q_proj.bias", 0, d_head),
            (a + "k_proj.bias", 0, d_head),
            (a + "v_proj.bias", 0, d_head),
        ]
        if n in params
    ]
    return {
        "head": [
            (a + "q_proj.weight", 0, d_head),
            (a + "o_proj.weight", 1, d_head),
            *[o for o in opt if "q_proj" in o[0]],
        ],
        "kv_head": [
            (a + "k_proj.weight", 0, d_head),
            (a + "v_proj.weight", 0, d_head),
            *[o for o in opt if "q_proj" not in o[0]],
        ],
        "neuron": [
            (m + "gate_proj.weight", 0, 1),
            (m + "up_proj.weight", 0, 1),
            (m + "down_proj.weight", 1, 1),
        ],
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
        d2 = b2 = torch.zeros(())
        for name, dim, width in sl:
            t, b = params[name].detach().float(), base[name].float()

            def per(x, dim=dim, width=width):
                return x.pow(2).movedim(dim, 0).reshape(x.shape[dim] // width, -1).sum(1)  # noqa: E731

            d2, b2 = d2 + per(t - b), b2 + per(b)
        for i, (d, b) in enumerate(zip(d2.sqrt().tolist(), b2.sqrt().tolist(), strict=True)):
            rows.append(
                {
                    "kind": kind,
                    "unit": i,
                    "delta_norm": d,
                    "base_norm": b,
                    "rel": d / b if b else float("nan"),
                }
            )
    df = pd.DataFrame(rows)
    df["rank"] = df.groupby("kind")["delta_norm"].rank(ascending=False, method="first").astype(int)
    return df


@contextmanager
def restore_units(
    model, base: dict[str, torch.Tensor], block: int, kind: str, units: Sequence[int]
) -> Iterator[None]:
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


@dataclass(frozen=True)
class RestorePlan:
    """Which restores :func:`restore_curve` measures: for each unit kind the k values, ``n_random`` random draws
    of k units per (kind, k) as the control, from generators seeded by (``seed``, kind, k)."""

    ks: Mapping[str, Sequence[int]]
    n_random: int = 3
    seed: int = 0


def restore_curve(
    model,
    base: dict[str, torch.Tensor],
    block: int,
    measure: Callable[[], dict],
    plan: RestorePlan,
    rankings: Mapping[str, pd.DataFrame] | None = None,
    skip: Collection[tuple] = (),
) -> pd.DataFrame:
    """For each kind and k of ``plan``: ``measure()`` (e.g. AFGB on the test split) with the top-k changed units
    restored, and with k random units restored (the control). Rows: kind, k, order, draw and the measured
    values; the k = 0 row is the tuned model itself.

    ``rankings``: order name → frame (kind, unit, rank; 1 = restored first); default ``{"top": delta_units(...)}``
    (rank by weight change). Random draws go with the first ranking, each from its own generator seeded by (seed,
    kind, k), so they do not depend on which other rows are measured. ``skip``: (kind, k, order) already measured
    (a resumed run); their rows are not produced again."""
    ks, seed, n_random = plan.ks, plan.seed, plan.n_random
    rankings = dict(rankings) if rankings is not None else {"top": delta_units(model, base, block)}
    rows = [{"kind": "none", "k": 0, "order": "top", "draw": 0, **measure()}]
    for kind, k_list in ks.items():
        for i, (order, ranked) in enumerate(rankings.items()):
            units = ranked[ranked.kind == kind].sort_values("rank")["unit"].tolist()
            if not units:
                continue
            for k in sorted({min(k, len(units)) for k in k_list}):
                draws = [(order, 0, units[:k])]
                if i == 0:  # the control
                    rng = np.random.default_rng([seed, KINDS.index(kind), k])
                    draws += [
                        ("random", d, rng.choice(units, k, replace=False).tolist())
                        for d in range(n_random if k < len(units) else 0)
                    ]
                for o, d, chosen in draws:
                    if (kind, k, o) in skip:
                        continue
                    with restore_units(model, base, block, kind, chosen):
                        rows.append({"kind": kind, "k": k, "order": o, "draw": d, **measure()})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- attribution


def _out_scale(runner: Runner, name: str | None, x: torch.Tensor) -> torch.Tensor | float:
    """The per-row linear map an RMSNorm applies to ``x`` [rows, d] with its scale frozen: (offset + w) / rms(x)."""
    if name is None:
        return 1.0
    w = runner.p[name + ".weight"].float()
    w = runner.arch.norm_offset + w if runner.arch.norm_offset else w
    return w * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + runner.eps)


def _batches(model, prompts: Sequence[str], batch_size: int) -> Iterator[tuple[torch.Tensor, Callable]]:
    """Right-padded token batches, each with ``last(t)``: t's rows at each prompt's last real token (float32, CPU)."""
    for start in range(0, len(prompts), batch_size):
        ids, lengths = encode_batch(model, list(prompts[start : start + batch_size]))
        rows = torch.arange(ids.shape[0])

        def last(t: torch.Tensor, rows=rows, lengths=lengths) -> torch.Tensor:
            return t[rows, (lengths - 1).to(t.device)].float().cpu()

        yield ids, last


def _readout(runner: Runner, model, male: Sequence[str], female: Sequence[str]) -> tuple[torch.Tensor, float]:
    """The unembedding direction of logit(male) − logit(female) (means over each list's words) [d_model], and its
    bias term (0 without an unembedding bias)."""
    he, she = target_ids(model, male), target_ids(model, female)
    w_u = runner.p[f"{runner.arch.head}.weight"].float()
    lm_b = runner.param(f"{runner.arch.head}.bias")
    u_b = float(lm_b[he].float().mean() - lm_b[she].float().mean()) if lm_b is not None else 0.0
    return w_u[he].mean(0) - w_u[she].mean(0), u_b


@torch.no_grad()
def unit_dla(
    model,
    block: int,
    prompts: Sequence[str],
    male: Sequence[str] = (" he",),
    female: Sequence[str] = (" she",),
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Direct logit attribution of ``block``'s heads and MLP neurons to logit(male) − logit(female) (mean over
    the words of each list) at each prompt's last token. Per prompt (float32, on CPU):

    * ``head`` [prompt, n_heads], ``neuron`` [prompt, d_mlp]: each unit's direct effect;
    * ``attn``, ``mlp`` [prompt]: the sub-layers' whole direct effect (units plus any bias term);
    * ``logit_diff`` [prompt]: the model's logit difference (the final norm's scale is frozen per prompt, so
      direct effects add up exactly);
    * ``acts`` [prompt, d_mlp]: neuron activations act(gate)·up; ``z`` [prompt, n_heads, d_head]: head outputs."""
    if not prompts:
        raise ConfigError("unit_dla needs at least one prompt.")
    _fast_arch(hf_of(model).config)
    runner = Runner(model)
    names = runner.sublayers[block]
    u, u_b = _readout(runner, model, male, female)
    w_o, w_down = (
        runner.p[names["attn"] + ".o_proj.weight"].float(),
        runner.p[names["mlp"] + ".down_proj.weight"].float(),
    )
    b_o, b_down = runner.param(names["attn"] + ".o_proj.bias"), runner.param(names["mlp"] + ".down_proj.bias")
    h, dh = runner.n_heads, runner.d_head
    parts: dict[str, list] = {k: [] for k in ("head", "neuron", "attn", "mlp", "logit_diff", "acts", "z")}
    for ids, last in _batches(model, prompts, batch_size):
        resid = runner.run(runner.embed(ids), 0, block)  # resid_pre of the block
        z, _ = runner.attn_z(block, runner.norm_at(block, "attn_in", resid))
        attn_raw = runner.linear(z, names["attn"] + ".o_proj")
        mid = resid + runner.norm_at(block, "attn_out", attn_raw)
        acts = runner.mlp_acts(block, runner.norm_at(block, "mlp_in", mid))
        mlp_raw = runner.linear(acts, names["mlp"] + ".down_proj")
        final = runner.run(mid + runner.norm_at(block, "mlp_out", mlp_raw), block + 1)
        r, a_raw, m_raw, a_z, a_act = last(final), last(attn_raw), last(mlp_raw), last(z), last(acts)
        d_fin = u * _out_scale(runner, runner.arch.final_norm, r)  # [b, d_model]: logit diff = d_fin · resid
        d_attn = d_fin * _out_scale(runner, names.get("attn_out"), a_raw)  # through the post-attention norm
        d_mlp = d_fin * _out_scale(runner, names.get("mlp_out"), m_raw)
        parts["logit_diff"].append((d_fin * r).sum(-1) + u_b)
        parts["attn"].append((d_attn * a_raw).sum(-1))
        parts["mlp"].append((d_mlp * m_raw).sum(-1))
        parts["neuron"].append(a_act * (d_mlp @ w_down))  # [b, d_mlp]
        zh = a_z.view(ids.shape[0], h, dh)
        parts["head"].append(((d_attn @ w_o).view(ids.shape[0], h, dh) * zh).sum(-1))  # [b, n_heads]
        parts["acts"].append(a_act)
        parts["z"].append(zh)
    out = {k: torch.cat(v) for k, v in parts.items()}
    out["attn_bias"] = (out["attn"] - out["head"].sum(-1)) if b_o is not None else torch.zeros(len(prompts))
    out["mlp_bias"] = (
        (out["mlp"] - out["neuron"].sum(-1)) if b_down is not None else torch.zeros(len(prompts))
    )
    return out


@torch.no_grad()
def sublayer_dla(
    model,
    prompts: Sequence[str],
    male: Sequence[str] = (" he",),
    female: Sequence[str] = (" she",),
    batch_size: int = 32,
) -> dict:
    """Direct logit attribution of every residual component to logit(male) − logit(female) at each prompt's last
    token: the embedding, then each block's attention and MLP output as added to the residual (after any
    post-sub-layer norm). Per prompt (float32, on CPU): ``out`` [prompt, component, d_model] the components at the
    last token, ``d`` [prompt, d_model] the readout direction (unembedding difference times the final norm's frozen
    scale), ``effect`` [prompt, component] = d · out, and ``logit_diff`` [prompt] = Σ effect + any unembedding bias
    (the model's own logit difference). ``components``: names ``embed``, ``attn0``, ``mlp0``, …"""
    if not prompts:
        raise ConfigError("sublayer_dla needs at least one prompt.")
    _fast_arch(hf_of(model).config)
    runner = Runner(model)
    u, u_b = _readout(runner, model, male, female)
    outs, ds = [], []
    for ids, last in _batches(model, prompts, batch_size):
        x = runner.embed(ids)
        comps = [last(x)]
        x, steps = runner.walk_to_end(x)
        for s in steps:
            comps += [last(s.attn_out), last(s.mlp_out)]
        r = last(x)
        outs.append(torch.stack(comps, 1))  # [b, component, d_model]
        ds.append(u * _out_scale(runner, runner.arch.final_norm, r))
    out, d = torch.cat(outs), torch.cat(ds)
    effect = (d[:, None] * out).sum(-1)
    names = ["embed"] + [f"{k}{i}" for i in range(runner.n_layers) for k in ("attn", "mlp")]
    return {"components": names, "out": out, "d": d, "effect": effect, "logit_diff": effect.sum(-1) + u_b}


def path_change(before: dict, after: dict) -> tuple[pd.DataFrame, dict]:
    """Per residual component, from two :func:`sublayer_dla` results on the same prompts (base, then tuned
    weights): its direct effect towards the base model's preferred pronoun before and after, and the change split
    exactly into ``own`` (d_after · (out_after − out_before): the component's output moved) and ``scale``
    ((d_after − d_before) · out_before: the final norm's scale moved), each with its share of the change in the
    signed logit difference. Returns (frame, summary with the signed logit difference before and after and the
    total scale share)."""
    if before["effect"].shape != after["effect"].shape or before["components"] != after["components"]:
        raise ConfigError("path_change needs sublayer_dla of the same model and prompts before and after.")
    sign = torch.sign(before["logit_diff"])
    sign[sign == 0] = 1.0
    own = (sign[:, None] * (after["d"][:, None] * (after["out"] - before["out"])).sum(-1)).mean(0)
    scale = (sign[:, None] * ((after["d"] - before["d"])[:, None] * before["out"]).sum(-1)).mean(0)
    ld_b, ld_a = float((sign * before["logit_diff"]).mean()), float((sign * after["logit_diff"]).mean())
    total = ld_a - ld_b
    eff_b, eff_a = (sign[:, None] * before["effect"]).mean(0), (sign[:, None] * after["effect"]).mean(0)
    rows = []
    for i, name in enumerate(before["components"]):
        found = re.fullmatch(r"(embed|attn|mlp)(\d*)", name)
        assert found is not None, name
        kind, digits = found.groups()
        layer = int(digits) if digits else -1
        rows.append(
            {
                "component": name,
                "layer": layer,
                "kind": kind,
                "direct_before": float(eff_b[i]),
                "direct_after": float(eff_a[i]),
                "own": float(own[i]),
                "scale": float(scale[i]),
                "change": float(own[i] + scale[i]),
                "own_share": float(own[i]) / total if total else float("nan"),
                "scale_share": float(scale[i]) / total if total else float("nan"),
            }
        )
    frame = pd.DataFrame(rows)
    return frame, {
        "n_prompts": int(sign.numel()),
        "logit_diff_before": ld_b,
        "logit_diff_after": ld_a,
        "scale_share": float(scale.sum()) / total if total else float("nan"),
    }


TOP_K = {"head": (1, 3), "neuron": (16, 64, 256)}  # the top-k shares attribution_change reports per kind


def attribution_change(
    before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], top: Mapping[str, Sequence[int]] = TOP_K
) -> tuple[pd.DataFrame, dict]:
    """Unit by unit, the direct effect towards the base model's preferred pronoun (sign of the base logit
    difference per prompt), before and after tuning, from two :func:`unit_dla` results on the same prompts.

    Returns (units, summary). units: kind, unit, dla_before, dla_after, dla_change (means over prompts of the
    signed effect), act_change (mean ‖activation after − before‖: |Δ act| for a neuron, ‖Δ z‖ for a head) and
    rank (1 = largest |dla_change| within the kind). summary: the signed logit difference and the block's direct
    attention / MLP effects before and after, the share of the logit-difference change that is the block's
    direct effect, and per kind the share of Σ|dla_change| held by its top-k units."""
    if before["logit_diff"].shape != after["logit_diff"].shape:
        raise ConfigError("attribution_change needs unit_dla of the same prompts before and after.")
    sign = torch.sign(before["logit_diff"])  # +1: the base model prefers the male word on this prompt
    sign[sign == 0] = 1.0
    rows = []
    for kind, act_key in (("head", "z"), ("neuron", "acts")):
        b, a = (sign[:, None] * before[kind]).mean(0), (sign[:, None] * after[kind]).mean(0)
        d_act = after[act_key] - before[act_key]
        act_change = d_act.norm(dim=-1).mean(0) if d_act.dim() == 3 else d_act.abs().mean(0)
        for i in range(b.shape[0]):
            rows.append(
                {
                    "kind": kind,
                    "unit": i,
                    "dla_before": float(b[i]),
                    "dla_after": float(a[i]),
                    "dla_change": float(a[i] - b[i]),
                    "act_change": float(act_change[i]),
                }
            )
    units = pd.DataFrame(rows)
    units["rank"] = (
        units.groupby("kind")["dla_change"]
        .transform(lambda c: c.abs().rank(ascending=False, method="first"))
        .astype(int)
    )

    def signed(d: dict, key: str) -> float:
        return float((sign * d[key]).mean())

    ld_b, ld_a = signed(before, "logit_diff"), signed(after, "logit_diff")
    summary = {"n_prompts": int(sign.numel()), "logit_diff_before": ld_b, "logit_diff_after": ld_a}
    for key in ("attn", "mlp"):
        summary[f"{key}_direct_before"], summary[f"{key}_direct_after"] = (
            signed(before, key),
            signed(after, key),
        )
        summary[f"{key}_direct_share_of_change"] = (
            (signed(after, key) - signed(before, key)) / (ld_a - ld_b) if ld_a != ld_b else float("nan")
        )
    for kind, g in units.groupby("kind"):
        mag = g.sort_values("rank")["dla_change"].abs()
        total = float(mag.sum()) or 1.0
        shares = {int(k): float(mag.iloc[:k].sum() / total) for k in top.get(kind, ()) if k <= len(mag)}
        summary[f"{kind}_top_share_of_change"] = shares  # type: ignore[assignment]
    return units, summary


__all__ = [
    "KINDS",
    "attribution_change",
    "delta_units",
    "path_change",
    "restore_curve",
    "restore_units",
    "sublayer_dla",
    "unit_dla",
]
