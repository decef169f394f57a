"""The long-context term: the LFTF loss on training prompts that follow 0 … ``context_max`` tokens of neutral text.

Text. :func:`stretches` draws ``context_n`` stretches from the documents given to :func:`~lftf_interp.tune.tune` (the
experiments layer passes corpus documents that neither the long-context probe nor the retention windows read):
stretch i holds ``round(i · context_max / (context_n − 1))`` tokens (0 … ``context_max``, evenly spaced), the end of a
seeded window of a seeded document, decoded and ended with a blank line — the form the long-context probe
uses. Every training prompt belongs to one stretch (prompt j of a seeded order to stretch j mod n), so a step
draws one stretch and a batch of its prompts.

Cost. Blocks before the first tuned block never change, so a stretch's keys / values there, and the residual of
each of its prompts entering that block, are computed once (the stretch's own keys / values are then dropped).
A step recomputes the stretch's keys / values in the tuned block and every block after it with the current
weights, without a gradient, and runs the batch's prompts from the first tuned block attending to them: the
loss is exact, and its gradient flows through the prompt positions (the stretch's positions count as given
text within a step). A step costs one forward of the stretch through the blocks from the tuned one on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lftf_interp.errors import ConfigError
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import bos_id, encode, first_difference
from lftf_interp.tune.scopes import BlockInputCache

KV = tuple[torch.Tensor, torch.Tensor]


def stretch_lengths(n: int, max_tokens: int) -> list[int]:
    """``n`` lengths evenly spaced over 0 … ``max_tokens`` (both ends included; one stretch: ``max_tokens``)."""
    if n == 1:
        return [max_tokens]
    return [round(i * max_tokens / (n - 1)) for i in range(n)]


def stretches(model, documents: Sequence[str], lengths: Sequence[int], seed: int = 0) -> list[str]:
    """A stretch of ``documents`` of each of ``lengths`` tokens: a seeded document long enough and a seeded
    offset, decoded, stripped and ended with a blank line ("" for length 0)."""
    rng = np.random.default_rng(seed)
    encoded: dict[int, list[int]] = {}
    out = []
    for length in lengths:
        if length == 0:
            out.append("")
            continue
        for _ in range(100 * len(documents)):
            d = int(rng.integers(len(documents)))
            if d not in encoded:
                encoded[d] = encode(model, documents[d], start=False) if documents[d].strip() else []
            ids = encoded[d]
            if len(ids) > length:
                at = int(rng.integers(0, len(ids) - length))
                out.append(model.tokenizer.decode(ids[at : at + length]).strip() + "\n\n")
                break
        else:
            raise ConfigError(
                f"No document of the {len(documents)} given holds more than {length} tokens; give longer "
                "documents or shorter stretches (context_max)."
            )
    return out


def split_tokens(model, text: str, prompts: Sequence[str]) -> tuple[list[int], list[list[int]]]:
    """The token ids of ``text + prompt`` for each prompt, as (the ids they all share at the start, each one's
    rest): exactly what one encoding of the joined string gives (a blank line before a word is two newline
    tokens in SmolLM2's tokenizer, but one at the end of a text), and never an empty rest."""
    if not text:
        bos = bos_id(model)
        return ([bos] if bos is not None else []), [encode(model, p, start=False) for p in prompts]
    alone = encode(model, text)
    joined = [encode(model, text + p) for p in prompts]
    shared = [first_difference(alone, j) for j in joined]
    n = min(min(len(alone) if d is None else d, len(j) - 1) for d, j in zip(shared, joined, strict=True))
    return joined[0][:n], [j[n:] for j in joined]


def _walk_after(
    runner: Runner, x: torch.Tensor, start: int, stop: int | None, past: Sequence
) -> torch.Tensor:
    """Blocks ``start .. stop-1`` on ``x`` attending to one sequence's keys / values ``past`` (per layer, batch 1,
    None for a layer without them), shared by every row of the batch."""
    b = x.shape[0]
    past_b = [None if p is None else (p[0].expand(b, -1, -1, -1), p[1].expand(b, -1, -1, -1)) for p in past]
    out = x
    for step in runner.walk(x, start, stop, past_kv=past_b):
        out = step.resid_post
    return out


class ContextCache(BlockInputCache):
    """Prompts (each followed by the token ids ``suffix``) after their stretches, as the residual entering block
    ``start`` at the prompt positions: a :class:`~lftf_interp.tune.scopes.BlockInputCache` whose forward
    (:meth:`run`) attends to its stretch's keys / values."""

    def __init__(self, owner: ContextPrompts, x: torch.Tensor, lengths: torch.Tensor):
        self.owner, self.x, self.lengths, self.start = owner, x, lengths, owner.start

    def run(self, runner: Runner, x: torch.Tensor, idx) -> torch.Tensor:
        """The last block's output at the prompt positions of rows ``idx`` (all of one stretch)."""
        which = self.owner.which[idx].unique()
        if len(which) != 1:
            raise ValueError(f"a batch of context prompts spans stretches {which.tolist()}; draw one stretch")
        past, start = self.owner.kv(runner, int(which)), self.owner.start
        if past is None:
            return runner.run(x, start=start)
        return _walk_after(runner, x, start, None, past)


class ContextPrompts:
    """Prompts after stretches of text for one scope: ``cache`` (what :class:`GroupReader` reads), ``rows`` (the
    prompts of each stretch) and :meth:`batch` (a step's stretch and prompts)."""

    def __init__(
        self,
        scope,
        model,
        texts: Sequence[str],
        prompts: Sequence[str],
        suffixes: Sequence[tuple[int, ...]] = (),
        seed: int = 0,
    ):
        if scope.start is None:
            raise ConfigError(
                "the long-context term trains blocks (method 'block'); set context_weight=0 here."
            )
        self.scope, self.start, self.texts = scope, scope.start, list(texts)
        runner: Runner = scope.runner
        order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(seed))
        self.which = torch.empty(len(prompts), dtype=torch.long)
        self.which[order] = torch.arange(len(prompts)) % len(self.texts)
        self.rows = [torch.nonzero(self.which == k)[:, 0] for k in range(len(self.texts))]
        self.resid: list[torch.Tensor | None] = []  # per stretch: its residual entering `start`
        self._memo: tuple | None = None
        variants = [(), *[tuple(s) for s in suffixes]]
        parts: dict[tuple, list] = {v: [] for v in variants}
        for k, text in enumerate(self.texts):
            rows = self.rows[k].tolist()
            ids, tails = split_tokens(model, text, [prompts[r] for r in rows])
            prefix_kv = self._enter(runner, ids)
            for v in variants:
                toks = [t + list(v) for t in tails]
                parts[v].append((rows, self._prompts(runner, toks, len(ids), prefix_kv)))
        width = {v: max(t.shape[1] for _, (t, _) in parts[v]) for v in variants}
        self.caches = {}
        for v in variants:
            x = torch.zeros(len(prompts), width[v], runner.d_model)
            lengths = torch.zeros(len(prompts), dtype=torch.long)
            for rows, (r, lens) in parts[v]:
                x[rows, : r.shape[1]] = r
                lengths[rows] = lens
            self.caches[v] = ContextCache(self, x, lengths)

    @torch.no_grad()
    def _enter(self, runner: Runner, ids: list[int]) -> list[KV] | None:
        """Keep the stretch's residual entering ``start``; return its keys / values in the blocks before."""
        if not ids:
            self.resid.append(None)
            return None
        steps = list(runner.walk(runner.embed(torch.tensor([ids])), 0, self.start, parts=True))
        self.resid.append(steps[-1].resid_post if steps else runner.embed(torch.tensor([ids])))
        return [s.kv for s in steps]

    @torch.no_grad()
    def _prompts(self, runner: Runner, toks: list[list[int]], offset: int, prefix_kv) -> tuple:
        lengths = torch.tensor([len(t) for t in toks])
        ids = torch.zeros(len(toks), int(lengths.max()), dtype=torch.long)
        for i, t in enumerate(toks):
            ids[i, : len(t)] = torch.tensor(t)
        x = runner.embed(ids, start=offset)
        if prefix_kv is None or not self.start:
            return runner.run(x, stop=self.start), lengths
        return _walk_after(runner, x, 0, self.start, prefix_kv), lengths

    def cache(self, prefixes: Sequence[tuple[int, ...]] = ()) -> tuple[ContextCache, dict]:
        """What :meth:`GroupReader.log_masses` reads: the prompts, and the prompts + each word prefix."""
        return self.caches[()], {p: self.caches[tuple(p)] for p in prefixes}

    def kv(self, runner: Runner, k: int) -> list[KV | None] | None:
        """Stretch ``k``'s keys / values in every block from ``start`` on, with the current weights (None for the
        blocks before; None when the stretch is empty). Computed once per (stretch, weights)."""
        resid = self.resid[k]
        if resid is None:
            return None
        key = (k, tuple(p._version for p in self.scope.params.values()))
        if self._memo is None or self._memo[0] != key:
            with torch.no_grad():
                kvs = [s.kv for s in runner.walk(resid, self.start, parts=True)]
            self._memo = (key, [None] * self.start + kvs)
        return self._memo[1]

    def batch(self, size: int, seed: int, step: int) -> torch.Tensor:
        """A step's prompts: a seeded stretch, then up to ``size`` of its prompts (seeded by ``step``)."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        k = int(torch.randint(len(self.rows), (1,), generator=g))
        rows = self.rows[k]
        return rows[torch.randperm(len(rows), generator=g)[: min(size, len(rows))]]


__all__ = ["ContextCache", "ContextPrompts", "split_tokens", "stretch_lengths", "stretches"]
