"""log P(word | prompt) for words of any token length, the way a bias axis's group words are scored.

A word's log-probability after a prompt is the sum of its tokens' log-probabilities, each given the prompt
and the word's earlier tokens (the word is tokenised on its own, leading space included, as lm-eval-harness
does for continuations). Two paths:

* every word one token (" he", " she"): one right-padded forward per batch of prompts, the last position's
  log-softmax read at the word ids (the same numbers as :mod:`lftf_interp.metrics.pronoun`, bit for bit);
* some word several tokens (" xe", " Buddhist"): prompts are grouped by token length and run once; every
  word's continuation is then run on the prompt's cached keys/values, batched over (prompt, word) pairs, so
  a prompt is never recomputed per word (``make bench``: ``multitoken``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from jaxtyping import Float

from lftf_interp.errors import TokenizationError
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode, encode_batch


def word_ids(model_or_tok, words: Sequence[str]) -> list[list[int]]:
    """Token ids of each word on its own (no BOS); a word that tokenises to nothing is refused."""
    tok = getattr(model_or_tok, "tokenizer", model_or_tok)
    out = []
    for w in words:
        ids = tok.encode(w, add_special_tokens=False)
        if not ids:
            raise TokenizationError(
                f"Word {w!r} tokenises to nothing; give a non-empty word (with its leading space)."
            )
        out.append(ids)
    return out


def first_token_ids(model_or_tok, groups: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each group's words' first-token ids, deduplicated and sorted: what a last-position readout of a group
    (the patching metric, the lens) sums over."""
    return [sorted({w[0] for w in word_ids(model_or_tok, words)}) for words in groups]


@torch.no_grad()
def _single_token(runner, tok, prompts, ids: list[int], batch_size, progress) -> np.ndarray:
    out = np.empty((len(prompts), len(ids)))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, lengths = encode_batch(tok, [prompts[i] for i in idx])
        logp = runner.last_logits(x, lengths).double().log_softmax(-1)
        out[idx] = logp[:, ids].numpy()
        if progress:
            progress(len(idx))
    return out


@torch.no_grad()
def _multi_token(runner, tok, prompts, wids: list[list[int]], batch_size, progress) -> np.ndarray:
    out = np.empty((len(prompts), len(wids)))
    encoded = [encode(tok, p) for p in prompts]
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    first = torch.tensor([w[0] for w in wids])
    multi = [j for j, w in enumerate(wids) if len(w) > 1]
    width = max((len(wids[j]) - 1 for j in multi), default=0)
    conts = torch.zeros(
        len(multi), max(width, 1), dtype=torch.long
    )  # each word's tokens but its last, right-padded
    for r, j in enumerate(multi):
        conts[r, : len(wids[j]) - 1] = torch.tensor(wids[j][:-1])
    for idx in (g[s : s + batch_size] for g in by_len.values() for s in range(0, len(g), batch_size)):
        x = runner.embed(torch.tensor([encoded[i] for i in idx]))  # [b, pos]: one length, no padding
        x, steps = runner.walk_to_end(x)
        kvs = [s.kv for s in steps]
        logp0 = runner.unembed(x[:, -1]).double().log_softmax(-1)  # [b, vocab]
        lp = logp0[:, first].clone()  # [b, W]: every word's first token
        if multi:
            b, m = len(idx), len(multi)
            past = [
                (k.repeat_interleave(m, 0), v.repeat_interleave(m, 0)) for k, v in kvs
            ]  # rows: (prompt, word)
            h = runner.embed(conts.repeat(b, 1), start=x.shape[1])
            h, _ = runner.walk_to_end(h, past_kv=past)
            logp = runner.unembed(h).double().log_softmax(-1).view(b, m, conts.shape[1], -1)
            for r, j in enumerate(multi):
                rest = torch.tensor(wids[j][1:])  # token t+1 is read at continuation position t
                lp[:, j] += logp[:, r, torch.arange(len(rest)), rest].sum(-1)
        out[idx] = lp.numpy()
        if progress:
            progress(len(idx))
    return out


def word_logprobs(
    model,
    prompts: Sequence[str],
    words: Sequence[str],
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> Float[np.ndarray, "prompt word"]:
    """``[n_prompts, n_words]`` log P(word | prompt), float64 (see the module doc for the two paths)."""
    if len(prompts) == 0:
        raise TokenizationError("No prompts to score: the dataset or split is empty.")
    wids = word_ids(model, words)
    runner = Runner(model)
    if all(len(w) == 1 for w in wids):
        return _single_token(runner, model.tokenizer, prompts, [w[0] for w in wids], batch_size, progress)
    return _multi_token(runner, model.tokenizer, prompts, wids, batch_size, progress)


__all__ = ["first_token_ids", "word_ids", "word_logprobs"]
