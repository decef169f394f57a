"""Attribution patching: a gradient estimate of every patch of :func:`~.patching.patch_sweep` at once."""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from lftf_interp.locate.pairs import Metric, PatchPairs, logit_diff
from lftf_interp.locate.patching import SITES, aligned, block_activations
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import single_token_id


def attribution_patch(
    model,
    pairs: PatchPairs,
    male: str = " he",
    female: str = " she",
    per_position: bool = True,
    metric: Metric | None = None,
) -> pd.DataFrame:
    """Linear (gradient) estimate of every patch of :func:`patch_sweep` at once: 2 forwards + 1 backward.

    value(L, p) ≈ [(a_clean - a_corrupted)[L, p] · ∂LD/∂a at the corrupted run] / (LD_clean - LD_corrupted),
    the first-order Taylor estimate of the normalised metric (Nanda 2023, "Attribution patching").
    ``metric``: the raw (unnormalised) metric of logits, e.g. :func:`~.pairs.group_logit_diff` on an axis;
    default logit(male) − logit(female).
    """
    runner = Runner(model)
    clean = block_activations(runner, pairs.clean)
    with torch.no_grad():
        clean = aligned(pairs, clean, block_activations(runner, pairs.corrupted))
    ld = metric or logit_diff(single_token_id(model, male), single_token_id(model, female))
    with torch.enable_grad():
        x0 = runner.embed(pairs.corrupted).detach().requires_grad_(True)
        acts: dict[str, list[Tensor]] = {s: [] for s in SITES}
        resid, steps = runner.walk_to_end(x0)
        for s in steps:
            acts["resid_pre"].append(s.resid_pre)
            acts["attn_out"].append(s.attn_out)
            acts["mlp_out"].append(s.mlp_out)
        value = ld(runner.unembed(resid[:, -1]))
        flat = [t for s in SITES for t in acts[s]]
        grads = torch.autograd.grad(value, flat)
    ld_corr = float(value.detach())
    with torch.no_grad():
        ld_clean = float(ld(runner.unembed(clean["resid_post"][-1][:, -1])))
    denom = ld_clean - ld_corr
    rows, i = [], 0
    for site in SITES:
        for layer in range(runner.n_layers):
            delta = clean[site][layer] - acts[site][layer].detach()
            contrib = (delta * grads[i]).sum(-1).sum(0) / denom  # [pos]
            i += 1
            if per_position:
                for p, v in enumerate(contrib.tolist()):
                    rows.append(
                        {"site": site, "layer": layer, "pos": p, "token": pairs.str_tokens[p], "value": v}
                    )
            else:
                rows.append(
                    {"site": site, "layer": layer, "pos": -1, "token": "*", "value": float(contrib.sum())}
                )
    return pd.DataFrame(rows)


__all__ = ["attribution_patch"]
