"""Path patching: through which later heads and MLPs, and from which positions, the tuned block's change reaches
the logits (a causal test of what :func:`~lftf_interp.probes.mechanism.path_change` decomposes).

Tuning one block S changes only its output: on each prompt the residual leaving S moves by
δ = block_S(x; tuned) − block_S(x; base) (``[pos, d_model]``). A *receiver* is one place that reads the residual
after S: head h of a later block L (its queries, keys and values), the MLP of a later block, or the final
readout (``direct``). Path patching S → receiver runs the base model and lets only that receiver read
``resid + δ``; every other component reads the base residual, and whatever the receiver's output changes
downstream is recomputed (so "head (L, h)" counts its effect through every later block). The effect is the
change of the signed logit difference logit(he) − logit(she) at each prompt's last token (sign: the base
model's preferred word, so a negative effect removes bias), averaged over prompts.

``positions`` restricts δ to where the receiver reads it: ``all``, ``last`` (the last token: the query and that
token's key / value) or ``context`` (every earlier token: keys and values only). Reading δ everywhere with
every head and MLP of every later block and the readout is the tuned model itself (tested to float tolerance);
single receivers add up to the total to first order in δ.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

from lftf_interp.errors import ConfigError
from lftf_interp.models.runner import Runner, canonical_state_dict
from lftf_interp.models.tokens import encode_batch, target_ids

POSITIONS = ("all", "last", "context")

Receiver = tuple  # ("head", layer, h) | ("mlp", layer) | ("direct",)


def receivers_after(runner: Runner, block: int) -> list[Receiver]:
    """Every head and MLP of the blocks after ``block``, then the readout."""
    out: list[Receiver] = []
    for layer in range(block + 1, runner.n_layers):
        out += [("head", layer, h) for h in range(runner.n_heads)] + [("mlp", layer)]
    return out + [("direct",)]


def _block_reading(
    runner: Runner, layer: int, resid: Tensor, delta: Tensor, heads: Collection[int], mlp: bool
) -> Tensor:
    """Block ``layer`` on ``resid`` where only ``heads`` (and the MLP if ``mlp``) read ``resid + delta``."""
    z, _ = runner.attn_z(layer, runner.norm_at(layer, "attn_in", resid))
    if heads:
        zd, _ = runner.attn_z(layer, runner.norm_at(layer, "attn_in", resid + delta))
        z = z.clone()
        for h in heads:  # head h's output depends only on its own queries and its group's keys / values
            sl = slice(h * runner.d_head, (h + 1) * runner.d_head)
            z[..., sl] = zd[..., sl]
    attn_out = runner.norm_at(
        layer, "attn_out", runner.linear(z, f"{runner.sublayers[layer]['attn']}.{runner.arch.o}")
    )
    src = resid if runner.parallel else resid + attn_out  # what the MLP reads
    mlp_out = runner.norm_at(
        layer, "mlp_out", runner.mlp(layer, runner.norm_at(layer, "mlp_in", src + delta if mlp else src))
    )
    return resid + attn_out + mlp_out


def patched_resid(
    runner: Runner, block: int, resid: Tensor, delta: Tensor, receivers: Collection[Receiver]
) -> Tensor:
    """The last block's output when ``receivers`` (together) read the sender's ``delta`` on top of the base
    residual ``resid`` leaving ``block``; with ``("direct",)`` the readout reads it too."""
    x = resid
    for layer in range(block + 1, runner.n_layers):
        heads = {r[2] for r in receivers if r[0] == "head" and r[1] == layer}
        mlp = ("mlp", layer) in receivers
        x = _block_reading(runner, layer, x, delta, heads, mlp) if heads or mlp else runner.block(layer, x)
    return x + delta if ("direct",) in receivers else x


def _swap(params: Mapping[str, Tensor], values: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Copy ``values`` into ``params`` in place; returns what was there."""
    old = {n: params[n].detach().clone() for n in values}
    with torch.no_grad():
        for n, v in values.items():
            params[n].copy_(v)
    return old


@torch.no_grad()
def _position_mask(shape, last: Tensor, which: str, dtype) -> Tensor:
    """[batch, pos] 1 where the block's change is let through: every position, the last one, or all but it."""
    rows = torch.arange(shape[0])
    mask = torch.zeros(shape, dtype=dtype)
    if which == "all":
        mask[:] = 1.0
    elif which == "last":
        mask[rows, last] = 1.0
    else:
        mask[:] = 1.0
        mask[rows, last] = 0.0
    return mask


def _effects(
    eff: dict[tuple[int, str], list[Tensor]], receivers: Sequence[Receiver], total: float
) -> pd.DataFrame:
    """One row per (receiver, positions): its mean effect and its share of the total change."""
    out = []
    for (i, p), v in eff.items():
        r = receivers[i]
        e = float(torch.cat(v).mean())
        out.append(
            {
                "receiver": r[0],
                "layer": r[1] if len(r) > 1 else -1,
                "unit": r[2] if len(r) > 2 else -1,
                "positions": p,
                "effect": e,
                "share": e / total if total else float("nan"),
            }
        )
    return pd.DataFrame(out)


def path_patching(
    model,
    base: dict[str, Tensor],
    block: int,
    prompts: Sequence[str],
    receivers: Sequence[Receiver] | None = None,
    positions: Sequence[str] = POSITIONS,
    words: tuple[Sequence[str], Sequence[str]] = ((" he",), (" she",)),
    batch_size: int = 32,
) -> tuple[pd.DataFrame, dict]:
    """Path patching from tuned ``block`` to each receiver (default :func:`receivers_after`) at each of
    ``positions``. ``model`` carries the tuned weights; ``base`` the block's weights before tuning, by canonical
    name (a full snapshot works). Returns (rows: receiver, layer, unit, positions, effect, share of the total
    change; summary: signed logit difference of base and tuned, the total change and, per position set, the
    sum of the single-receiver effects)."""
    runner = Runner(model)
    if runner.path != "fast":
        raise ConfigError(
            "Path patching drives a fast row's heads one by one; this model runs on the generic path."
        )
    if not 0 <= block < runner.n_layers:
        raise ConfigError(f"block must be one of the model's blocks 0..{runner.n_layers - 1}, got {block}.")
    if bad := sorted(set(positions) - set(POSITIONS)):
        raise ConfigError(f"positions must be among {POSITIONS}, got {bad}.")
    if not prompts:
        raise ConfigError("path_patching needs at least one prompt.")
    params = canonical_state_dict(model)
    pre = f"{runner.arch.layers}.{block}."
    base_block = {n: v for n, v in base.items() if n.startswith(pre) and n in params}
    if not base_block:
        raise ConfigError(f"base holds no weights of block {block} ({pre}*).")
    receivers = list(receivers) if receivers is not None else receivers_after(runner, block)
    he, she = (torch.tensor(target_ids(model, list(w))) for w in words)  # logit difference: each list's mean

    def ld(x: Tensor, last: Tensor) -> Tensor:  # signed later; [batch]
        logits = runner.unembed(x[torch.arange(x.shape[0]), last])
        return logits[:, he].double().mean(-1) - logits[:, she].double().mean(-1)

    eff: dict[tuple[int, str], list[Tensor]] = {(i, p): [] for i in range(len(receivers)) for p in positions}
    ld_base, ld_tuned = [], []
    for s in range(0, len(prompts), batch_size):
        ids, lengths = encode_batch(model, list(prompts[s : s + batch_size]))
        last = lengths - 1
        tuned = _swap(params, base_block)  # base weights in the block; ``tuned`` holds the others
        try:
            resid = runner.run(runner.embed(ids), 0, block)  # resid_pre of the block (unchanged by tuning)
            post_b = runner.block(block, resid)
            # the base residual entering each later block; under n_layers, the last block's output
            steps = list(runner.walk(post_b, block + 1))
            entering = {st.layer: st.resid_pre for st in steps}
            entering[runner.n_layers] = final_b = steps[-1].resid_post if steps else post_b
        finally:
            _swap(params, tuned)
        post_t = runner.block(block, resid)
        delta = post_t - post_b
        b, t = ld(final_b, last), ld(runner.run(post_t, block + 1), last)
        sign = torch.where(b >= 0, 1.0, -1.0)
        ld_base.append(sign * b)
        ld_tuned.append(sign * t)
        for p in positions:
            d = delta * _position_mask(ids.shape, last, p, delta.dtype)[..., None].to(delta.device)
            for i, r in enumerate(receivers):
                first = runner.n_layers if r[0] == "direct" else r[1]  # blocks before it run as in the base
                x = patched_resid(runner, first - 1, entering[first], d, {r})
                eff[(i, p)].append(sign * (ld(x, last) - b))
    base_ld, tuned_ld = float(torch.cat(ld_base).mean()), float(torch.cat(ld_tuned).mean())
    total = tuned_ld - base_ld
    frame = _effects(eff, receivers, total)
    summary = {
        "block": block,
        "n_prompts": len(prompts),
        "logit_diff_base": base_ld,
        "logit_diff_tuned": tuned_ld,
        "total_change": total,
        "sum_of_single_receivers": {p: float(frame[frame.positions == p]["effect"].sum()) for p in positions},
    }
    return frame, summary


__all__ = ["POSITIONS", "patched_resid", "path_patching", "receivers_after"]
