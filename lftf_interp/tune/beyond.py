"""Optional gender terms of the fine-tune that reach beyond its one-person template:

* ``gendered_weight`` — keep gender that is *right*: cross-entropy toward the correct pronoun (renormalised
  over he / she, like the hint term) after inherently gendered nouns of the train pairs ("The actress said that").
* ``winobias_weight`` — balance pronouns inside two-person sentences and in other forms: the balanced loss on
  WinoBias *dev* sentences cut right before their pronoun, each row with its own pair (he / she, him / her,
  his / her). WinoBias test is only ever evaluated; ``winobias_split="dev-fit"`` trains on the part of dev whose
  occupations dev-select never names, so that dev-select can choose the weights.
* ``winobias_sentence_weight`` — the same balanced loss on whole WinoBias *dev* sentence pairs: a, b are the
  probabilities of the pro and the anti sentence from their first differing token (the pronoun) to the end, so
  the words after the pronoun count too (what the WinoBias probe measures; :func:`sentence_pair_loss`).
* ``cda_weight`` — the same loss on counterfactual pairs: sentences of the neutral text given to ``tune``
  (``documents``) that name a train occupation and a gendered word, beside their gender-swapped twins
  (:func:`~lftf_interp.data.counterfactual.counterfactual_pairs`; at most ``cda_n`` of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lftf_interp.data.counterfactual import counterfactual_pairs
from lftf_interp.data.external import winobias_pairs
from lftf_interp.data.probesets import gendered_prompts
from lftf_interp.errors import ConfigError
from lftf_interp.models.tokens import encode, first_difference, target_ids
from lftf_interp.tune.losses import hint_loss


def batch_indices(n: int, size: int, seed: int, step: int) -> torch.Tensor:
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


def sentence_pair_loss(lp_a: torch.Tensor, lp_b: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of −log σ(d) − log σ(−d), d = lp_a − lp_b: :func:`balanced_pair_loss` with whole
    sequences' log-probabilities as a and b (minimal, 2·log 2, when the two are equally likely)."""
    d = lp_a.float() - lp_b.float()
    return (torch.nn.functional.softplus(d) + torch.nn.functional.softplus(-d)).mean()


class _SentencePairs:
    """Sentence pairs (WinoBias dev pro / anti, or a corpus sentence and its gender-swapped twin) cached for a
    scope, with what scoring them from their first differing token needs."""

    def __init__(self, scope, model, first: Sequence[str], second: Sequence[str]):
        pro, anti = [encode(model, t) for t in first], [encode(model, t) for t in second]
        cut = [first_difference(a, b) or 0 for a, b in zip(pro, anti, strict=True)]
        keep = [i for i, c in enumerate(cut) if c >= 1]  # a pair differing at its first token is left out
        self.ids = ([pro[i] for i in keep], [anti[i] for i in keep])
        self.cut = [cut[i] for i in keep]
        self.caches = (scope.cache([first[i] for i in keep]), scope.cache([second[i] for i in keep]))

    def __len__(self) -> int:
        return len(self.cut)

    def logprobs(self, scope, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probs of the pro and the anti sentences of pairs ``idx`` from their first differing token."""
        a, b = (
            token_logprobs(scope, cache, ids, self.cut, idx)[0]
            for ids, cache in zip(self.ids, self.caches, strict=True)
        )
        return a, b


def token_logprobs(
    scope, cache, ids: Sequence[Sequence[int]], start: Sequence[int], idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-probability, token count) of the cached sequences ``idx`` from token ``start[i]`` on (token t
    is read at position t − 1), with gradients through the scope."""
    rows, pos, tgt = [], [], []
    for r, i in enumerate(idx.tolist()):
        for t in range(start[i], len(ids[i])):
            rows.append(r)
            pos.append(t - 1)
            tgt.append(ids[i][t])
    r_t = torch.tensor(rows)
    logp = scope.logits_at(cache, idx, r_t, torch.tensor(pos)).float().log_softmax(-1)
    picked = logp[torch.arange(len(tgt)), torch.tensor(tgt)]
    total = torch.zeros(len(idx), dtype=picked.dtype).index_add(0, r_t, picked)
    return total, torch.zeros(len(idx)).index_add(0, r_t, torch.ones(len(tgt)))


def winobias_material(cfg):
    """The WinoBias pairs the winobias terms of ``cfg`` train on (None when both are off), found and checked
    against their sha256; cheap, so a run calls it before its model loads to refuse a missing file early."""
    if cfg.winobias_weight <= 0 and cfg.winobias_sentence_weight <= 0:
        return None
    return winobias_pairs(Path(cfg.external) / "winobias" if cfg.external else None, cfg.winobias_split)


class BeyondTemplate:
    """The configured terms on their own cached prompts; ``__call__(step)`` → (weighted loss, {term: value})."""

    def __init__(self, scope, reader, model, cfg, documents: Sequence[str] | None = None):
        self.scope, self.reader, self.cfg = scope, reader, cfg
        self.gendered = self.wino = self.sentences = self.cda = None
        if cfg.gendered_weight > 0:
            g = gendered_prompts("train").df
            self.gendered = reader.cache(g["prompt"].tolist())
            self.g_labels = torch.tensor([0 if x == "he" else 1 for x in g["label"]])
        w = winobias_material(cfg)
        if cfg.winobias_weight > 0:
            self.wino = scope.cache(w["prefix"].tolist())
            self.w_male = torch.tensor(target_ids(model, [" " + x for x in w["male"]]))
            self.w_female = torch.tensor(target_ids(model, [" " + x for x in w["female"]]))
        if cfg.winobias_sentence_weight > 0:
            self.sentences = _SentencePairs(scope, model, w["pro"].tolist(), w["anti"].tolist())
        if cfg.cda_weight > 0:
            pairs = counterfactual_pairs(documents or (), cfg.cda_n, cfg.seed)
            if not pairs:
                raise ConfigError(
                    "the documents given hold no sentence that names a train occupation and a gendered word; "
                    "give more text or set cda_weight to 0."
                )
            self.cda = _SentencePairs(scope, model, [a for a, _ in pairs], [b for _, b in pairs])

    def __call__(self, step: int) -> tuple[torch.Tensor | float, dict]:
        cfg, loss, parts = self.cfg, 0.0, {}
        if self.gendered is not None:
            idx = batch_indices(len(self.g_labels), cfg.batch_size, cfg.seed + 104729, step)
            lg = hint_loss(self.reader.log_masses(self.gendered, idx), self.reader.groups, self.g_labels[idx])
            loss, parts["loss_gendered"] = loss + cfg.gendered_weight * lg, lg.item()
        if self.wino is not None:
            idx = batch_indices(len(self.w_male), cfg.batch_size, cfg.seed + 130363, step)
            lw = balanced_pair_loss(
                self.scope.last_logits(self.wino, idx), self.w_male[idx], self.w_female[idx]
            )
            loss, parts["loss_winobias"] = loss + cfg.winobias_weight * lw, lw.item()
        if self.sentences is not None:
            idx = batch_indices(len(self.sentences), cfg.batch_size, cfg.seed + 155921, step)
            ls = sentence_pair_loss(*self.sentences.logprobs(self.scope, idx))
            loss, parts["loss_winobias_sentence"] = loss + cfg.winobias_sentence_weight * ls, ls.item()
        if self.cda is not None:
            idx = batch_indices(len(self.cda), cfg.batch_size, cfg.seed + 196613, step)
            lc = sentence_pair_loss(*self.cda.logprobs(self.scope, idx))
            loss, parts["loss_cda"] = loss + cfg.cda_weight * lc, lc.item()
        return loss, parts

    @staticmethod
    def wanted(cfg) -> bool:
        """Whether ``cfg`` turns on any of these terms."""
        return (
            cfg.gendered_weight > 0
            or cfg.winobias_weight > 0
            or cfg.winobias_sentence_weight > 0
            or cfg.cda_weight > 0
        )


__all__ = ["BeyondTemplate", "balanced_pair_loss", "batch_indices", "sentence_pair_loss", "token_logprobs"]
