"""Tokenisation helpers. One BOS policy per model family, applied here and nowhere else: a tokenizer that
:func:`lftf_interp.models.loading.set_bos_policy` marked with ``lftf_bos_id`` gets that id before every prompt (Gemma-3);
otherwise none is prepended (Llama, Qwen2; see :mod:`lftf_interp.models.loading`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from lftf_interp.errors import TokenizationError


def _tok(model_or_tok):
    return getattr(model_or_tok, "tokenizer", model_or_tok)


def single_token_id(model_or_tok, word: str) -> int:
    """The id of ``word`` (with its leading space, e.g. " he"); raises if it is not exactly one token."""
    tok = _tok(model_or_tok)
    ids = tok.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tok.convert_ids_to_tokens(ids)
        raise TokenizationError(
            f"Target word {word!r} is {len(ids)} tokens {pieces} for this tokenizer, but pronoun probabilities "
            "need exactly one. Use a word that is a single token (check the leading space: ' he', not 'he'), "
            "or pass several single-token words whose probabilities are summed."
        )
    return ids[0]


def target_ids(model_or_tok, words: Sequence[str]) -> list[int]:
    if not words:
        raise TokenizationError("No target words given: pass at least one, e.g. [' he'].")
    return [single_token_id(model_or_tok, w) for w in words]


def bos_id(model_or_tok) -> int | None:
    """The BOS id prompts of this model start with, or None (the family's policy)."""
    return getattr(_tok(model_or_tok), "lftf_bos_id", None)


def encode(model_or_tok, prompt: str, start: bool = True) -> list[int]:
    """Token ids of one prompt, no special tokens but the model's BOS when ``start`` (the beginning of a
    sequence) and its family's policy asks for one; ``start=False`` for a continuation."""
    ids = _tok(model_or_tok).encode(prompt, add_special_tokens=False)
    if not ids:
        raise TokenizationError(f"Prompt {prompt!r} tokenises to nothing; give a non-empty prompt.")
    bos = bos_id(model_or_tok) if start else None
    return [bos, *ids] if bos is not None else ids


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two token sequences differ (None if one is a prefix of the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)


def encode_batch(
    model_or_tok,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    pad_id: int | None = None,
    suffix: Sequence[int] = (),
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, " batch"]]:
    """Right-padded ids and true lengths (``suffix``: token ids appended to every prompt, e.g. a word's first
    tokens). A prompt given as a list of token ids is taken as it is. Causal attention never lets a pad reach an
    earlier position."""
    ids = [(encode(model_or_tok, p) if isinstance(p, str) else list(p)) + list(suffix) for p in prompts]
    if pad_id is None:
        pad_id = _tok(model_or_tok).pad_token_id or 0
    n = max(len(x) for x in ids)
    out = torch.full((len(ids), n), pad_id, dtype=torch.long)
    for i, x in enumerate(ids):
        out[i, : len(x)] = torch.tensor(x)
    return out, torch.tensor([len(x) for x in ids])
