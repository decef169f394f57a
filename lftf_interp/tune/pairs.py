"""The fine-tune's sentence-pair terms: bias as a preference between two whole sentences that differ in a
group or its stereotype, on StereoSet items of the fit split's target terms (``tune(pairs=...)``; the select
split validates, the test split is never read here).

Each item is a context and three sentences (stereotype, anti-stereotype, unrelated). A sentence's score s is its
mean per-token log-probability after the start token (and the context, for intersentence items), as StereoSet
scores it (:func:`~lftf_interp.metrics.pairs.sentence_ids` gives the tokens both read).

* ``pair_weight`` — the balanced loss on each pair: softplus(d) + softplus(−d) with d = s_stereotype −
  s_anti-stereotype (:func:`~lftf_interp.tune.beyond.sentence_pair_loss`), minimal when the two are equally
  likely, whichever was ahead.
* ``lms_weight`` — keep meaningful sentences above the unrelated one: mean over both meaningful sentences of
  relu(m_base − m)², m = s_meaningful − s_unrelated and m_base the base model's margin on that item; zero while
  no margin shrinks, so it does not reward moving away from the base.

* ``swap_weight`` — the same balanced loss between each meaningful sentence and its twin about the other group
  (``twin_stereotype`` / ``twin_anti-stereotype``: the axis's counterparts swapped, "the caring mother" / "the
  caring father"), on the fit items whose two sentences both have a twin: each sentence made as likely whichever
  group it names, so the stereotype's lead over the anti-stereotype no longer depends on the group.

The validation score (history column ``val_pair``) is |2 × (share of select items with d > 0) − 1|: 0 when the
stereotype wins half the time (SS 50), 1 when it always or never wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from lftf_interp.errors import ConfigError
from lftf_interp.metrics.pairs import sentence_ids
from lftf_interp.tune.beyond import batch_indices, sentence_pair_loss, token_logprobs

KINDS = ("stereotype", "anti-stereotype", "unrelated")
PAIR_COLUMNS = ("context", *KINDS, "split")


def check_pairs(pairs: pd.DataFrame) -> None:
    """Refuse pair material without its columns, or with target terms of a split other than fit and select."""
    if missing := [c for c in PAIR_COLUMNS if c not in pairs.columns]:
        raise ConfigError(
            f"pair material lacks column(s) {missing}; give StereoSet items with {list(PAIR_COLUMNS)} "
            "(lftf_interp.retain.stereoset.pair_material)."
        )
    if bad := sorted(set(pairs["split"]) - {"fit", "select"}):
        raise ConfigError(
            f"pair material holds split(s) {bad}: the fine-tune trains on fit and validates on select items; "
            "test items are only ever evaluated."
        )
    for split in ("fit", "select"):
        if not (pairs["split"] == split).any():
            raise ConfigError(f"pair material has no {split} items; give both fit and select items.")


class SentenceSet:
    """Tokenised sentences cached for a scope (the residual entering its first tuned block), scored with
    gradients: :meth:`scores` → each sentence's mean per-token log-probability."""

    def __init__(self, scope, model, contexts: Sequence[str], sentences: Sequence[str]):
        tok = [sentence_ids(model, c, s) for c, s in zip(contexts, sentences, strict=True)]
        self.ids, self.score_from = [t for t, _ in tok], [f for _, f in tok]
        self.cache = scope.cache(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, scope, idx: torch.Tensor) -> torch.Tensor:
        total, n = token_logprobs(scope, self.cache, self.ids, self.score_from, idx)
        return total / n


class ItemSet:
    """Sentences of each item of one split, cached: ``columns`` maps a kind to the column holding its sentences
    (default: the three kinds' own columns)."""

    def __init__(self, scope, model, items: pd.DataFrame, columns: dict[str, str] | None = None):
        columns = columns or {k: k for k in KINDS}
        self.sets = {
            k: SentenceSet(scope, model, items["context"].tolist(), items[c].tolist())
            for k, c in columns.items()
        }
        self.n = len(items)

    def scores(self, scope, idx: torch.Tensor, kinds: Sequence[str] = KINDS) -> dict[str, torch.Tensor]:
        return {k: self.sets[k].scores(scope, idx) for k in kinds}


def margin_loss(scores: dict[str, torch.Tensor], base_margins: torch.Tensor) -> torch.Tensor:
    """Mean of relu(m_base − m)² over the two meaningful sentences, m = s_meaningful − s_unrelated."""
    m = torch.stack([scores["stereotype"], scores["anti-stereotype"]], -1) - scores["unrelated"][:, None]
    return torch.relu(base_margins - m).pow(2).mean()


class PairTerms:
    """The pair and margin terms of ``cfg`` on the fit items of ``pairs``; ``__call__(step)`` → (weighted loss,
    {term: value}); :meth:`validate` → ``val_pair`` on the select items."""

    def __init__(self, scope, model, cfg, pairs: pd.DataFrame):
        check_pairs(pairs)
        self.scope, self.cfg = scope, cfg
        self.fit = ItemSet(scope, model, pairs[pairs["split"] == "fit"].reset_index(drop=True))
        self.select = ItemSet(scope, model, pairs[pairs["split"] == "select"].reset_index(drop=True))
        self.twins = None
        if cfg.swap_weight > 0:
            fit = pairs[pairs["split"] == "fit"].reset_index(drop=True)
            twin = {k: f"twin_{k}" for k in KINDS[:2]}
            if missing := [c for c in twin.values() if c not in fit.columns]:
                raise ConfigError(
                    f"swap_weight needs pair material with {missing} (pair_material gives them)."
                )
            fit = fit[fit[list(twin.values())].notna().all(axis=1)].reset_index(drop=True)
            if fit.empty:
                raise ConfigError(
                    "no fit sentence names a counterpart word of the axis; set swap_weight to 0."
                )
            self.twins = (
                ItemSet(scope, model, fit, {k: k for k in KINDS[:2]}),
                ItemSet(scope, model, fit, twin),
            )
        self.base_margins = None
        if cfg.lms_weight > 0:
            with torch.no_grad():
                s = self.fit.scores(scope, torch.arange(self.fit.n))
                self.base_margins = torch.stack(
                    [s["stereotype"] - s["unrelated"], s["anti-stereotype"] - s["unrelated"]], -1
                )

    def __call__(self, step: int) -> tuple[torch.Tensor | float, dict]:
        cfg, loss, parts = self.cfg, 0.0, {}
        idx = batch_indices(self.fit.n, cfg.batch_size, cfg.seed + 224737, step)
        kinds = KINDS if self.base_margins is not None else KINDS[:2]
        s = self.fit.scores(self.scope, idx, kinds) if cfg.pair_weight > 0 or cfg.lms_weight > 0 else {}
        if cfg.pair_weight > 0:
            lp = sentence_pair_loss(s["stereotype"], s["anti-stereotype"])
            loss, parts["loss_pair"] = loss + cfg.pair_weight * lp, lp.item()
        if self.base_margins is not None:
            lm = margin_loss(s, self.base_margins[idx])
            loss, parts["loss_lms"] = loss + cfg.lms_weight * lm, lm.item()
        if self.twins is not None:
            tidx = batch_indices(self.twins[0].n, cfg.batch_size, cfg.seed + 251087, step)
            a, b = (t.scores(self.scope, tidx, KINDS[:2]) for t in self.twins)
            ls = sentence_pair_loss(torch.cat(list(a.values())), torch.cat(list(b.values())))
            loss, parts["loss_swap"] = loss + cfg.swap_weight * ls, ls.item()
        return loss, parts

    @torch.no_grad()
    def validate(self) -> dict:
        idx = torch.arange(self.select.n)
        s = self.select.scores(self.scope, idx, KINDS[:2])
        share = float((s["stereotype"] > s["anti-stereotype"]).double().mean())
        return {"val_pair": abs(2 * share - 1)}

    @staticmethod
    def wanted(cfg) -> bool:
        return cfg.pair_weight > 0 or cfg.lms_weight > 0 or cfg.swap_weight > 0


__all__ = ["ItemSet", "PairTerms", "SentenceSet", "check_pairs", "margin_loss"]
