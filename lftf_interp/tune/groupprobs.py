"""What the training loss reads: log P(group | prompt) per prompt, with gradients, for words of any length.

A group's probability is the sum of its words' probabilities and a word's log-probability is the sum of its
tokens' (as :mod:`lftf_interp.metrics.wordprobs` scores them for evaluation). With every word one token, that is the
log-softmax at the prompt's last position read at the word ids: what the losses compute from the logits
(the gender numbers do not move). A word of n > 1 tokens adds, for j = 1 .. n−1, token j's log-probability at
the end of "prompt + the word's first j tokens"; those prefixes are cached like the prompts themselves (the
residual entering the tuned block), so one training step runs one extra forward per distinct word prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lftf_interp.data import BiasAxis
from lftf_interp.metrics.wordprobs import word_ids
from lftf_interp.tune.losses import LogMasses
from lftf_interp.tune.scopes import BlockInputCache


class GroupReader:
    """For one scope and axis: :meth:`cache` prompts once, then :meth:`log_masses` per batch of their indices."""

    def __init__(self, scope, model, axis: BiasAxis):
        self.scope = scope
        self.words = [word_ids(model, g.words) for g in axis.groups]  # per group, per word: its token ids
        self.single = all(len(t) == 1 for g in self.words for t in g)
        self.groups = [[t[0] for t in g] for g in self.words]  # first tokens (the whole words when single)
        self.prefixes = sorted({tuple(t[:j]) for g in self.words for t in g for j in range(1, len(t))})

    def cache(self, prompts: Sequence[str]) -> tuple[BlockInputCache, dict[tuple, BlockInputCache]]:
        return self.scope.cache(prompts), {p: self.scope.cache(prompts, suffix=p) for p in self.prefixes}

    def logits(self, cached, idx) -> Tensor:
        """Last-position logits of the prompts themselves."""
        return self.scope.last_logits(cached[0], idx)

    def log_masses(self, cached, idx) -> Tensor | LogMasses:
        """The prompts' logits when every word is one token (the losses read the word ids there), else the
        groups' log-probabilities as :class:`~lftf_interp.tune.losses.LogMasses`."""
        logits = self.logits(cached, idx)
        if self.single:
            return logits
        logp0 = logits.float().log_softmax(-1)
        after = {p: self.scope.last_logits(c, idx).float().log_softmax(-1) for p, c in cached[1].items()}
        out = LogMasses()
        for g in self.words:
            lps = [
                logp0[:, t[0]]
                + sum((after[tuple(t[:j])][:, t[j]] for j in range(1, len(t))), torch.zeros(()))
                for t in g
            ]
            out.append(torch.logsumexp(torch.stack(lps, -1), -1))
        return out


__all__ = ["GroupReader"]
