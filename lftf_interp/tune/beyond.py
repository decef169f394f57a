"""Optional gender terms of the fine-tune that reach beyond its one-person template (issue 12):

* ``gendered_weight`` — keep gender that is *right*: cross-entropy toward the correct pronoun (renormalised
  over he / she, like the hint term) after inherently gendered nouns of the train pairs ("The actress said that").
* ``winobias_weight`` — balance pronouns inside two-person sentences and in other forms: the balanced loss on
  WinoBias *dev* sentences cut right before their pronoun, each row with its own pair (he / she, him / her,
  his / her). WinoBias test is only ever evaluated.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.external import winobias_pairs
from ..data.probesets import gendered_prompts
from ..tokens import target_ids
from .losses import hint_loss


def _batch(n: int, size: int, seed: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(n, generator=g)[: min(size, n)]


def balanced_pair_loss(logits: torch.Tensor, male: torch.Tensor, female: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −log(a / (a + b)) − log(b / (a + b)), with a, b the probabilities of each row's own
    male and female token ids (minimal at a = b, whatever a + b)."""
    logp = logits.float().log_softmax(-1)
    rows = torch.arange(len(male))
    a, b = logp[rows, male], logp[rows, female]
    z = torch.logaddexp(a, b)
    return (-(a - z) - (b - z)).mean()


class BeyondTemplate:
    """The configured terms on their own cached prompts; ``__call__(step)`` → (weighted loss, {term: value})."""

    def __init__(self, scope, reader, model, cfg):
        self.scope, self.reader, self.cfg = scope, reader, cfg
        self.gendered = self.wino = None
        if cfg.gendered_weight > 0:
            g = gendered_prompts("train").df
            self.gendered = reader.cache(g["prompt"].tolist())
            self.g_labels = torch.tensor([0 if x == "he" else 1 for x in g["label"]])
        if cfg.winobias_weight > 0:
            w = winobias_pairs(Path(cfg.external) / "winobias" if cfg.external else None, "dev")
            self.wino = scope.cache(w["prefix"].tolist())
            self.w_male = torch.tensor(target_ids(model, [" " + x for x in w["male"]]))
            self.w_female = torch.tensor(target_ids(model, [" " + x for x in w["female"]]))

    def __call__(self, step: int) -> tuple[torch.Tensor | float, dict]:
        cfg, loss, parts = self.cfg, 0.0, {}
        if self.gendered is not None:
            idx = _batch(len(self.g_labels), cfg.batch_size, cfg.seed + 104729, step)
            lg = hint_loss(self.reader.log_masses(self.gendered, idx), self.reader.groups, self.g_labels[idx])
            loss, parts["loss_gendered"] = loss + cfg.gendered_weight * lg, lg.item()
        if self.wino is not None:
            idx = _batch(len(self.w_male), cfg.batch_size, cfg.seed + 130363, step)
            lw = balanced_pair_loss(self.scope.last_logits(self.wino, idx), self.w_male[idx], self.w_female[idx])
            loss, parts["loss_winobias"] = loss + cfg.winobias_weight * lw, lw.item()
        return loss, parts


__all__ = ["BeyondTemplate", "balanced_pair_loss"]
