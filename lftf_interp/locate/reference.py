"""The reference implementation: the same sweep with ``transformer_lens.patching`` (one hooked forward per
layer × position). Slow; used to test :func:`lftf_interp.locate.patching.patch_sweep` and as the speed
baseline of ``make bench``."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from lftf_interp.locate.pairs import Metric, PatchPairs
from lftf_interp.locate.patching import check_site

TL_HOOK = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}


def tl_patch(model, pairs: PatchPairs, metric: Metric, site: str = "resid_pre") -> Float[Tensor, "layer pos"]:
    """The same sweep with ``transformer_lens.patching`` (one hooked forward per layer × position)."""
    from transformer_lens import patching

    check_site(site)
    fn = {
        "resid_pre": patching.get_act_patch_resid_pre,
        "attn_out": patching.get_act_patch_attn_out,
        "mlp_out": patching.get_act_patch_mlp_out,
    }[site]
    with torch.no_grad():
        _, cache = model.run_with_cache(pairs.clean)
        return fn(model, pairs.corrupted, cache, metric)


__all__ = ["TL_HOOK", "tl_patch"]
