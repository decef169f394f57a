"""LFTF losses on the group probabilities at the last prompt position, plus optional retention terms.

With P_k = P(group k | p) (a sum over the group's single-token words) for K groups, Q_k = P_k / Σ_j P_j and a
reference distribution r (uniform by default); for gender a = P(he), b = P(she):

* ``paper``    L = −Σ_k log P_k; for K = 2, −log a − log b: minimal at a = b = 0.5 (all mass on the two
               pronouns, balanced)
* ``sum``      L = Σ_k P_k; for K = 2, a + b, the form in a secondary summary of the paper. It is minimised by
               *removing* group mass, not by balancing it (we keep it to show that)
* ``balanced`` L = −K Σ_k r_k log Q_k (cross-entropy of Q against r, times K); for K = 2 and uniform r,
               −log(a / (a + b)) − log(b / (a + b)): minimal at Q = r whatever the mass Σ P_k

For K = 2 every term computes exactly what the two-pronoun version did (the gender numbers do not move).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from lftf_interp.errors import ConfigError

LOSSES = ("paper", "sum", "balanced")
Groups = Sequence[Sequence[int]]  # token ids of each group's words (each word one token)


class LogMasses(list):
    """log P_k per row for each group, already computed (e.g. for words of several tokens,
    :class:`~lftf_interp.tune.groupprobs.GroupReader`): every loss takes it in place of the logits."""


def _log_masses(logits: Tensor | LogMasses, groups: Groups) -> list[Tensor]:
    """log P_k per row for each group (logsumexp over its word ids), or the given :class:`LogMasses`."""
    if isinstance(logits, LogMasses):
        return list(logits)
    logp = logits.float().log_softmax(-1)
    return [torch.logsumexp(logp[:, list(ids)], dim=-1) for ids in groups]


def _log_total(ls: list[Tensor]) -> Tensor:
    lz = ls[0]
    for lk in ls[1:]:
        lz = torch.logaddexp(lz, lk)
    return lz


def group_loss(
    logits: Float[Tensor, "batch d_vocab"] | LogMasses,
    groups: Groups,
    kind: str = "balanced",
    reference: Sequence[float] | None = None,
) -> Float[Tensor, ""]:
    """Mean over the batch of the selected LFTF loss (see module doc)."""
    ls = _log_masses(logits, groups)
    k = len(ls)
    r = [1 / k] * k if reference is None else list(reference)
    if kind == "paper":
        per = -ls[0]
        for lk in ls[1:]:
            per = per - lk
    elif kind == "sum":
        per = ls[0].exp()
        for lk in ls[1:]:
            per = per + lk.exp()
    elif kind == "balanced":
        lz = _log_total(ls)
        per = -(k * r[0]) * (ls[0] - lz)
        for rk, lk in zip(r[1:], ls[1:], strict=True):
            per = per - (k * rk) * (lk - lz)
    else:
        raise ConfigError(f"Unknown loss {kind!r}; choose one of {LOSSES}.")
    return per.mean()


def pronoun_loss(
    logits: Float[Tensor, "batch d_vocab"],
    male_ids: Sequence[int],
    female_ids: Sequence[int],
    kind: str = "balanced",
) -> Float[Tensor, ""]:
    """The two-group (he / she) case of :func:`group_loss`."""
    return group_loss(logits, [male_ids, female_ids], kind)


def hint_loss(
    logits: Float[Tensor, "batch d_vocab"] | LogMasses, groups: Groups, labels: Int[Tensor, " batch"]
) -> Float[Tensor, ""]:
    """Cross-entropy toward the hinted group (``labels``: its index) within the groups: −log Q_hinted.
    Renormalised, so it teaches which group, not how much group mass (a full-vocabulary cross-entropy inflated
    the he+she mass from 0.29 to 0.98 on SmolLM2)."""
    ls = _log_masses(logits, groups)
    lz = _log_total(ls)
    hinted = torch.stack(ls, -1).gather(-1, labels.long()[:, None])[:, 0]
    return -(hinted - lz).mean()


def log_group_mass(
    logits: Float[Tensor, "batch d_vocab"] | LogMasses, groups: Groups
) -> Float[Tensor, " batch"]:
    """log Σ_k P_k per row (for gender, log(P(he) + P(she)))."""
    return _log_total(_log_masses(logits, groups))


def mass_anchor(
    logits: Float[Tensor, "batch d_vocab"] | LogMasses, groups: Groups, base_log_mass: Float[Tensor, " batch"]
) -> Float[Tensor, ""]:
    """Squared change of the log group mass from the base model's, mean over the batch:
    (log Σ P_k − log Σ P_k,base)². ``balanced`` and the renormalised hint term are blind to the mass, so without
    this term it drifts (he+she: 1.42× base on SmolLM2, seed 0); with it, the mass is held near the base."""
    return (log_group_mass(logits, groups) - base_log_mass).pow(2).mean()


def kl_to_base(
    logits: Float[Tensor, "n d_vocab"], base_logits: Float[Tensor, "n d_vocab"]
) -> Float[Tensor, ""]:
    """KL(base ‖ tuned) of next-token distributions, mean over rows."""
    return F.kl_div(
        logits.float().log_softmax(-1),
        base_logits.float().log_softmax(-1),
        log_target=True,
        reduction="batchmean",
    )


__all__ = [
    "LOSSES",
    "LogMasses",
    "group_loss",
    "hint_loss",
    "kl_to_base",
    "log_group_mass",
    "mass_anchor",
    "pronoun_loss",
]
