"""BMI (Block Mitigating Importance): how much each block rotates the residual stream on bias prompts.

BMI_i = mean over prompts of 1 - cos(h_in, h_out), with h_in / h_out block i's input (``resid_pre``) and
output (``resid_post``) at the last prompt position (``positions="all"``: the mean over every real
position). LFTF fine-tunes the block with the largest BMI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float
from scipy.stats import spearmanr
from torch import Tensor

from lftf_interp.errors import ConfigError
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode_batch


def bmi_from_residuals(
    resid_in: Float[Tensor, "layer batch d_model"], resid_out: Float[Tensor, "layer batch d_model"]
) -> Float[Tensor, " layer"]:
    """Pure formula: mean over the batch of 1 - cos(h_in, h_out), per layer."""
    return (1 - F.cosine_similarity(resid_in.double(), resid_out.double(), dim=-1)).mean(-1)


@torch.no_grad()
def block_cosines(
    model,
    prompts: Sequence[str],
    positions: str = "last",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Float[Tensor, "layer prompt"]:
    """1 - cos(resid_pre, resid_post) per block and prompt, in one forward per batch (no activation cache)."""
    if positions not in ("last", "all"):
        raise ConfigError(f"positions must be 'last' or 'all', got {positions!r}")
    if len(prompts) == 0:
        raise ConfigError("BMI needs at least one prompt.")
    runner = Runner(model)
    out = torch.empty(runner.n_layers, len(prompts), dtype=torch.float64)
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        ids, lengths = encode_batch(model, chunk)
        rows = torch.arange(len(chunk))
        mask = torch.arange(ids.shape[1])[None] < lengths[:, None]  # real (non-pad) positions
        for layer, resid, new, *_ in runner.walk(runner.embed(ids)):
            dist = 1 - F.cosine_similarity(resid.double(), new.double(), dim=-1)  # [batch, pos]
            if positions == "last":
                out[layer, start : start + len(chunk)] = dist[rows, lengths - 1]
            else:
                out[layer, start : start + len(chunk)] = (dist * mask).sum(-1) / lengths
        if progress:
            progress(len(chunk))
    return out


def rank_blocks(values: Sequence[float], tol: float = 1e-9) -> pd.DataFrame:
    """Rank blocks by BMI (1 = largest). Ties (|difference| <= tol) share the best rank and are flagged."""
    v = np.asarray(values, float)
    order = np.argsort(-v, kind="stable")
    ranks = np.empty(len(v), int)
    for i, idx in enumerate(order):
        prev = order[i - 1] if i else None
        ranks[idx] = ranks[prev] if prev is not None and abs(v[prev] - v[idx]) <= tol else i + 1
    tied = pd.Series(ranks).duplicated(keep=False).to_numpy()
    return pd.DataFrame({"layer": np.arange(len(v)), "bmi": v, "rank": ranks, "tied": tied})


def compute_bmi(
    model,
    prompts: Sequence[str],
    positions: str = "last",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Tidy BMI table: layer, bmi, sem (standard error over prompts), rank, tied, n, positions."""
    d = block_cosines(model, prompts, positions, batch_size, progress).numpy()
    df = rank_blocks(d.mean(1))
    df["sem"] = d.std(1, ddof=1) / np.sqrt(d.shape[1]) if d.shape[1] > 1 else np.nan
    df["n"] = d.shape[1]
    df["positions"] = positions
    return df


def top_block(bmi: pd.DataFrame) -> int:
    """The block LFTF tunes: rank 1 (lowest index among ties, reported in ``bmi.tied``)."""
    return int(bmi.sort_values(["rank", "layer"]).iloc[0]["layer"])


def bmi_stability(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Agreement of two BMI tables (e.g. train vs test prompts): Spearman rho, top-1 and top-3 overlap."""
    rho = spearmanr(a.sort_values("layer").bmi, b.sort_values("layer").bmi).statistic
    top3 = lambda d: set(d.nsmallest(3, "rank").layer)  # noqa: E731
    return {
        "spearman_rho": float(rho),
        "top1_a": top_block(a),
        "top1_b": top_block(b),
        "top1_agree": top_block(a) == top_block(b),
        "top3_overlap": len(top3(a) & top3(b)),
    }
