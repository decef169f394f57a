"""Log-likelihood scoring and greedy decoding over token sequences: what the retention probe and the
lm-evaluation-harness adapter share.

A :class:`Seq` says what to score: target tokens ``ids[score_from:]`` (each from the previous position), or
the log-probs of ``choice_ids`` after the last position (multiple choice with one-token answers). Sequences
are batched by a token budget, right-padded (causal attention never lets a pad reach a real position), and may
start at block ``start`` from cached residuals (a block fine-tune changes nothing before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lftf_interp.models.runner import Runner


@dataclass
class Seq:
    ids: list[int]
    score_from: int = 0  # targets ids[score_from:] are scored (log-prob from the previous position)
    choice_ids: tuple[int, ...] = ()  # instead: log-probs of these tokens after the last position
    kl: bool = False


def batches(seqs: Sequence[Seq], budget: int):
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].ids))
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * len(seqs[i].ids) > budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def padded(seqs: Sequence[Seq], idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids of ``seqs[idx]`` and their lengths."""
    lengths = torch.tensor([len(seqs[i].ids) for i in idx])
    ids = torch.zeros(len(idx), int(lengths.max()), dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, : len(seqs[i].ids)] = torch.tensor(seqs[i].ids)
    return ids, lengths


@torch.no_grad()
def hidden(
    runner: Runner, seqs: Sequence[Seq], idx: list[int], start: int = 0, cached=None
) -> tuple[torch.Tensor, int]:
    """The residual of batch ``idx`` entering block ``start`` or later, and that block: ``cached`` residuals
    (entering ``start``), else from :meth:`Runner.enter` (inside ``reuse_prefix``: its block) run on to ``start``."""
    if cached is not None:
        x = torch.zeros(len(idx), max(len(seqs[i].ids) for i in idx), runner.d_model)
        for r, i in enumerate(idx):
            x[r, : cached[i].shape[0]] = cached[i]
        return x, start
    x, at = runner.enter(*padded(seqs, idx))
    if at < start:
        x, at = runner.run(x, start=at, stop=start), start
    return x, at


@torch.no_grad()
def score(
    runner: Runner, seqs: Sequence[Seq], token_budget: int, start: int = 0, cached=None, kl_stride: int = 0
):
    """Per sequence: summed target log-prob and count, choice log-probs, and (if asked) KL log-probs."""
    lp_sum, n_tok = np.zeros(len(seqs)), np.zeros(len(seqs), dtype=int)
    greedy = np.zeros(len(seqs), dtype=bool)
    choice_lp: list[np.ndarray | None] = [None] * len(seqs)
    kl_logp: list[torch.Tensor | None] = [None] * len(seqs)
    for idx in batches(seqs, token_budget):
        x, at = hidden(runner, seqs, idx, start, cached)
        out = runner.run(x, start=at)
        for r, i in enumerate(idx):
            s = seqs[i]
            n = len(s.ids)
            if s.choice_ids:
                logp = runner.unembed(out[r, n - 1]).float().log_softmax(-1)
                choice_lp[i] = logp[list(s.choice_ids)].numpy()
                continue
            pos = torch.arange(s.score_from - 1, n - 1)
            logp = runner.unembed(out[r, pos]).float().log_softmax(-1)
            tgt = torch.tensor(s.ids[s.score_from :])
            lp_sum[i] = float(logp[torch.arange(len(pos)), tgt].sum())
            n_tok[i] = len(pos)
            greedy[i] = bool((logp.argmax(-1) == tgt).all())
            if s.kl and kl_stride:
                kl_logp[i] = logp[::kl_stride].half()
    return lp_sum, n_tok, choice_lp, kl_logp, greedy


@torch.no_grad()
def greedy(runner: Runner, ids: list[int], n_new: int, stop=None) -> list[int]:
    """Greedy continuation with a per-block key/value cache; ``stop(tokens)`` may end it early."""
    out: list[int] = []
    kvs: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    x = runner.embed(torch.tensor([ids]))
    while len(out) < n_new:
        h, steps = runner.walk_to_end(x, past_kv=kvs)
        kvs = [
            s.kv
            if kvs is None
            else (torch.cat([kvs[s.layer][0], s.kv[0]], 2), torch.cat([kvs[s.layer][1], s.kv[1]], 2))
            for s in steps
        ]
        out.append(int(runner.unembed(h[0, -1]).argmax()))
        if stop is not None and stop(out):
            break
        x = runner.embed(torch.tensor([[out[-1]]]), start=len(ids) + len(out) - 1)
    return out


__all__ = ["Seq", "batches", "greedy", "hidden", "padded", "score"]
