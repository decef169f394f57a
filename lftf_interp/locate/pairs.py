"""Clean / corrupted prompt pairs for activation patching, and the he − she logit-difference metric.

Pairs must have the same token length (positions are compared one to one). The explicit rule: with
``align="error"`` (default) a pair whose lengths differ raises, naming the pair; with ``align="drop"``
such pairs are dropped and counted in ``pairs.n_dropped``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from ..data import HINTS, TEMPLATES, load_frame
from ..errors import ConfigError, LftfError
from ..runner import LlamaRunner
from ..tokens import encode, single_token_id

Metric = Callable[[Tensor], Tensor]


@dataclass
class PatchPairs:
    """Clean / corrupted prompt pairs of one common token length."""

    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]
    df: pd.DataFrame
    str_tokens: list[str] = field(default_factory=list)
    n_dropped: int = 0

    @property
    def n_pos(self) -> int:
        return self.clean.shape[1]

    def __len__(self) -> int:
        return self.clean.shape[0]


def make_pairs(
    model, clean_prompts: Sequence[str], corrupted_prompts: Sequence[str], meta: pd.DataFrame | None = None,
    align: str = "error",
) -> PatchPairs:
    """Tokenise pairs (no BOS). Lengths must match pairwise and across pairs; see the module doc for ``align``."""
    if align not in ("error", "drop"):
        raise ConfigError(f"align must be 'error' or 'drop', got {align!r}")
    if len(clean_prompts) != len(corrupted_prompts):
        raise LftfError(f"{len(clean_prompts)} clean prompts but {len(corrupted_prompts)} corrupted ones.")
    keep, clean, corr, dropped = [], [], [], 0
    for i, (c, k) in enumerate(zip(clean_prompts, corrupted_prompts, strict=True)):
        a, b = encode(model, c), encode(model, k)
        if len(a) != len(b):
            if align == "error":
                raise LftfError(
                    f"Pair {i}: clean prompt {c!r} is {len(a)} tokens but corrupted {k!r} is {len(b)}. Patching "
                    "compares positions one to one: use words of equal token length, or align='drop' to skip "
                    "such pairs."
                )
            dropped += 1
            continue
        keep.append(i)
        clean.append(a)
        corr.append(b)
    if not keep:
        raise LftfError("No clean/corrupted pair of equal token length is left; nothing to patch.")
    lengths = {len(a) for a in clean}
    if len(lengths) > 1:
        raise LftfError(
            f"Pairs have different lengths {sorted(lengths)}; a sweep batches pairs of one length. Group them "
            "first (e.g. by template), or pass one pair at a time."
        )
    df = (meta.iloc[keep].reset_index(drop=True) if meta is not None else pd.DataFrame(index=range(len(keep)))).copy()
    df["clean_prompt"] = [clean_prompts[i] for i in keep]
    df["corrupted_prompt"] = [corrupted_prompts[i] for i in keep]
    tok = model.tokenizer
    return PatchPairs(
        torch.tensor(clean), torch.tensor(corr), df, [tok.decode([t]) for t in clean[0]], n_dropped=dropped
    )


def _largest_length_group(model, clean, corrupted, meta, n, seed) -> PatchPairs:
    lens = pd.Series([len(encode(model, c)) for c in clean])
    same = [len(encode(model, k)) for k in corrupted]
    ok = lens == pd.Series(same)
    mode = lens[ok].mode().iloc[0]
    idx = [i for i in range(len(clean)) if ok[i] and lens[i] == mode]
    random.Random(seed).shuffle(idx)
    idx = sorted(idx[:n])
    return make_pairs(model, [clean[i] for i in idx], [corrupted[i] for i in idx], meta.iloc[idx])


def hint_swap_pairs(
    model, split: str = "test", hint_kind: str = "noun", template_id: int | None = None, n: int = 16, seed: int = 0
) -> PatchPairs:
    """"The X is a man. <template>" (clean, he) vs "... a woman. ..." (corrupted, she); same template.

    One hint kind and one template (default: the split's first), occupations of the modal token length.
    """
    kinds = {k: (m, f) for k, m, f in HINTS}
    if hint_kind not in kinds or hint_kind == "name":
        raise LftfError(f"hint_kind must be one of {[k for k in kinds if k != 'name']}, got {hint_kind!r}.")
    df = load_frame("genbias")
    df = df[df.split == split]
    if df.empty:
        raise LftfError(f"No GenBiasEval prompts in split {split!r}.")
    template_id = int(sorted(df.template_id.unique())[0]) if template_id is None else template_id
    occs = sorted(df[df.template_id == template_id].occupation.unique())
    if not occs:
        raise LftfError(f"Template {template_id} is not in split {split!r}.")
    male, female = kinds[hint_kind]
    tpl = TEMPLATES[template_id]
    clean = [male.format(occupation=o) + " " + tpl.format(occupation=o) for o in occs]
    corr = [female.format(occupation=o) + " " + tpl.format(occupation=o) for o in occs]
    meta = pd.DataFrame({"occupation": occs, "template_id": template_id, "hint_kind": hint_kind, "pair": "hint_swap"})
    return _largest_length_group(model, clean, corr, meta, n, seed)


def stereotype_swap_pairs(model, split: str = "test", template_id: int | None = None, n: int = 16, seed: int = 0) -> PatchPairs:
    """Same template, a male-stereotyped occupation (clean) vs a female-stereotyped one (corrupted)."""
    df = load_frame("genbias")
    df = df[(df.split == split) & df.stereotype.isin(["male", "female"])]
    template_id = int(sorted(df.template_id.unique())[0]) if template_id is None else template_id
    d = df[df.template_id == template_id]
    tpl = TEMPLATES[template_id]
    rng = random.Random(seed)
    by_len: dict[tuple[str, int], list[str]] = {}
    for o, s in zip(d.occupation, d.stereotype, strict=True):
        by_len.setdefault((s, len(encode(model, tpl.format(occupation=o)))), []).append(o)
    clean, corr, rows = [], [], []
    for (s, length), males in sorted(by_len.items()):
        if s != "male":
            continue
        females = by_len.get(("female", length), [])
        rng.shuffle(males)
        rng.shuffle(females)
        for m, f in zip(males, females, strict=False):
            clean.append(tpl.format(occupation=m))
            corr.append(tpl.format(occupation=f))
            rows.append({"clean_occupation": m, "corrupted_occupation": f, "template_id": template_id, "pair": "stereotype_swap"})
    if not clean:
        raise LftfError(f"No male/female occupation pair of equal token length for template {template_id}.")
    return _largest_length_group(model, clean, corr, pd.DataFrame(rows), n, seed)


# ----------------------------------------------------------------------------- metrics


def logit_diff(he_id: int, she_id: int) -> Metric:
    """Mean over the batch of logit(he) - logit(she) at the last position."""

    def metric(logits: Tensor) -> Tensor:
        last = logits[:, -1] if logits.ndim == 3 else logits
        return (last[:, he_id] - last[:, she_id]).mean()

    return metric


def normalized_logit_diff(he_id: int, she_id: int, clean_value: float, corrupted_value: float) -> Metric:
    """(LD - LD_corrupted) / (LD_clean - LD_corrupted): 1 = clean behaviour, 0 = corrupted behaviour."""
    if abs(clean_value - corrupted_value) < 1e-8:
        raise LftfError("Clean and corrupted prompts give the same logit difference; the metric cannot be normalised.")
    base = logit_diff(he_id, she_id)

    def metric(logits: Tensor) -> Tensor:
        return (base(logits) - corrupted_value) / (clean_value - corrupted_value)

    return metric


@torch.no_grad()
def pair_metric(model, pairs: PatchPairs, male: str = " he", female: str = " she") -> tuple[Metric, float, float]:
    """The normalised he-she logit-difference metric for these pairs, and the clean / corrupted values."""
    he, she = single_token_id(model, male), single_token_id(model, female)
    runner = LlamaRunner(model)
    ld = logit_diff(he, she)
    clean = float(ld(runner.unembed(runner.run(runner.embed(pairs.clean))[:, -1])))
    corr = float(ld(runner.unembed(runner.run(runner.embed(pairs.corrupted))[:, -1])))
    return normalized_logit_diff(he, she, clean, corr), clean, corr


__all__ = ["Metric", "PatchPairs", "hint_swap_pairs", "logit_diff", "make_pairs", "normalized_logit_diff", "pair_metric", "stereotype_swap_pairs"]
