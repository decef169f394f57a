"""Locating: which block writes / reads the gender signal (BMI, activation patching, logit lens, attribution),
and which block the fine-tune should train (:func:`choose_blocks`)."""

from .attribution import attribution_patch
from .bmi import block_cosines, bmi_from_residuals, bmi_stability, compute_bmi, rank_blocks, top_block
from .choose import BlockChoice, artefact_blocks, choose_blocks, rank_for_tuning
from .lens import compute_logit_lens, default_groups
from .pairs import (
    PatchPairs,
    hint_swap_pairs,
    logit_diff,
    make_pairs,
    normalized_logit_diff,
    pair_metric,
    stereotype_swap_pairs,
)
from .patching import (
    SITES,
    as_grid,
    block_activations,
    check_hook_name,
    patch_attn_out,
    patch_attn_out_by_block,
    patch_every,
    patch_mlp_out,
    patch_mlp_out_by_block,
    patch_resid_pre,
    patch_resid_pre_by_block,
    patch_sweep,
)
from .reference import tl_patch

__all__ = [
    "SITES",
    "BlockChoice",
    "PatchPairs",
    "artefact_blocks",
    "as_grid",
    "attribution_patch",
    "block_activations",
    "block_cosines",
    "bmi_from_residuals",
    "bmi_stability",
    "check_hook_name",
    "choose_blocks",
    "compute_bmi",
    "compute_logit_lens",
    "default_groups",
    "hint_swap_pairs",
    "logit_diff",
    "make_pairs",
    "normalized_logit_diff",
    "pair_metric",
    "patch_attn_out",
    "patch_attn_out_by_block",
    "patch_every",
    "patch_mlp_out",
    "patch_mlp_out_by_block",
    "patch_resid_pre",
    "patch_resid_pre_by_block",
    "patch_sweep",
    "rank_blocks",
    "rank_for_tuning",
    "stereotype_swap_pairs",
    "tl_patch",
    "top_block",
]
