"""Clean / corrupted prompt pairs for activation patching, and the logit-difference metrics (he − she, and
any axis's groups).

Positions are compared one to one. The explicit rule: with ``align="error"`` (default) a pair whose lengths
differ raises, naming the pair; with ``align="drop"`` such pairs are dropped and counted in ``pairs.n_dropped``;
with ``align="end"`` pairs may differ in length where their words differ (" xe" is two tokens, " he" one) and
are aligned on the prompt: the common prefix position by position (its activations are identical in both
runs), everything after it from the end. Positions are then the corrupted prompt's (``pairs.n_pos``); a clean
activation at corrupted position p is the clean run's at p + (clean length − corrupted length), past the prefix.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from lftf_interp.data import HINTS, TEMPLATES, load_frame
from lftf_interp.errors import ConfigError, LftfError
from lftf_interp.metrics.wordprobs import first_token_ids
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode, single_token_id

Metric = Callable[[Tensor], Tensor]


@dataclass
class PatchPairs:
    """Clean / corrupted prompt pairs: every clean prompt of one token length, every corrupted one of one
    length (equal unless ``align="end"``, see the module doc)."""

    clean: Int[Tensor, "batch pos_clean"]
    corrupted: Int[Tensor, "batch pos"]
    df: pd.DataFrame
    str_tokens: list[str] = field(default_factory=list)
    n_dropped: int = 0
    prefix: list[int] = field(default_factory=list)  # per pair: tokens shared from the start (align="end")

    @property
    def n_pos(self) -> int:
        return self.corrupted.shape[1]

    @property
    def offset(self) -> int:
        """Clean length − corrupted length (0 for pairs of one length)."""
        return self.clean.shape[1] - self.corrupted.shape[1]

    def align(self, clean: Tensor, corrupted: Tensor, rows: slice = slice(None)) -> Tensor:
        """A clean activation [b, pos_clean, ...] on the corrupted positions [b, pos, ...] (module doc)."""
        if self.offset == 0:
            return clean
        out = corrupted.clone()
        for r, cp in enumerate(self.prefix[rows]):
            start = max(
                cp, -self.offset
            )  # from here on, position p of the corrupted run is p + offset of the clean
            out[r, start:] = clean[r, start + self.offset :]
        return out

    def __len__(self) -> int:
        return self.clean.shape[0]


def make_pairs(
    model,
    clean_prompts: Sequence[str],
    corrupted_prompts: Sequence[str],
    meta: pd.DataFrame | None = None,
    align: str = "error",
) -> PatchPairs:
    """Tokenise pairs (no BOS). Lengths must match pairwise and across pairs, except with ``align="end"``
    (one length for the clean prompts, one for the corrupted); see the module doc."""
    if align not in ("error", "drop", "end"):
        raise ConfigError(f"align must be 'error', 'drop' or 'end', got {align!r}")
    if len(clean_prompts) != len(corrupted_prompts):
        raise LftfError(f"{len(clean_prompts)} clean prompts but {len(corrupted_prompts)} corrupted ones.")
    keep, clean, corr, dropped = [], [], [], 0
    for i, (c, k) in enumerate(zip(clean_prompts, corrupted_prompts, strict=True)):
        a, b = encode(model, c), encode(model, k)
        if len(a) != len(b) and align != "end":
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
    lengths = {(len(a), len(b)) for a, b in zip(clean, corr, strict=True)}
    if len(lengths) > 1:
        raise LftfError(
            f"Pairs have different lengths {sorted(lengths)}; a sweep batches pairs of one length. Group them "
            "first (e.g. by template), or pass one pair at a time."
        )
    df = (
        meta.iloc[keep].reset_index(drop=True) if meta is not None else pd.DataFrame(index=range(len(keep)))
    ).copy()
    df["clean_prompt"] = [clean_prompts[i] for i in keep]
    df["corrupted_prompt"] = [corrupted_prompts[i] for i in keep]
    tok = model.tokenizer
    prefix = [
        next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        for a, b in zip(clean, corr, strict=True)
    ]
    shown = clean[0] if len(clean[0]) == len(corr[0]) else corr[0]
    return PatchPairs(
        torch.tensor(clean),
        torch.tensor(corr),
        df,
        [tok.decode([t]) for t in shown],
        n_dropped=dropped,
        prefix=prefix,
    )


def _largest_length_group(model, clean, corrupted, meta, n, seed, align: str = "error") -> PatchPairs:
    """``n`` pairs (seeded) of the most common length: equal lengths, or with ``align="end"`` the most common
    (clean length, corrupted length)."""
    lens = [(len(encode(model, c)), len(encode(model, k))) for c, k in zip(clean, corrupted, strict=True)]
    ok = [a == b or align == "end" for a, b in lens]
    mode = pd.Series([x for x, good in zip(lens, ok, strict=True) if good]).mode().iloc[0]
    idx = [i for i in range(len(clean)) if ok[i] and lens[i] == mode]
    random.Random(seed).shuffle(idx)
    idx = sorted(idx[:n])
    out = make_pairs(model, [clean[i] for i in idx], [corrupted[i] for i in idx], meta.iloc[idx], align=align)
    out.n_dropped = len(clean) - sum(ok)
    return out


def hint_swap_pairs(
    model,
    split: str = "test",
    hint_kind: str = "noun",
    template_id: int | None = None,
    n: int = 16,
    seed: int = 0,
) -> PatchPairs:
    """ "The X is a man. <template>" (clean, he) vs "... a woman. ..." (corrupted, she); same template.

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
    meta = pd.DataFrame(
        {"occupation": occs, "template_id": template_id, "hint_kind": hint_kind, "pair": "hint_swap"}
    )
    return _largest_length_group(model, clean, corr, meta, n, seed)


def axis_hint_pairs(
    model,
    axis,
    split: str = "test",
    hint_kind: str | None = None,
    template_id: int | None = None,
    n: int = 16,
    seed: int = 0,
    align: str = "end",
) -> PatchPairs:
    """Hint-swap pairs on any axis: "<hint for group a> <template>" (clean) vs "<hint for group b> <template>"
    (corrupted), same subject, template and hint kind; a and b rotate through the groups so every group is
    clean and corrupted equally often. Columns clean_group / corrupted_group feed :func:`group_pair_metric`.

    With ``align="end"`` (default) pairs may differ in length where their hint words do (" xe" vs " he") and are
    aligned on the prompt (module doc); ``"drop"`` keeps only pairs of equal length (the rest counted in
    ``n_dropped``). Of the lengths left, the most common is kept."""
    if not axis.hints or not axis.templates:
        raise ConfigError(
            f"Axis {axis.name!r} has no hints and templates to build patching pairs from; patching "
            "needs an axis with generated prompts (templates, subjects, hints)."
        )
    kinds = list(dict.fromkeys(h.get("kind", "") for h in axis.hints))
    kind = kinds[0] if hint_kind is None else hint_kind
    if kind not in kinds:
        raise ConfigError(f"Axis {axis.name!r} has no hint kind {kind!r}; kinds: {kinds}.")
    hint = {h["group"]: h["text"] for h in axis.hints if h.get("kind", "") == kind}
    groups = [g for g in axis.group_names if g in hint]
    tpls = [i for i, t in enumerate(axis.templates) if t["split"] == split]
    subjects = [s["name"] for s in axis.subjects if s["split"] == split]
    if len(groups) < 2 or not tpls or not subjects:
        raise ConfigError(
            f"Axis {axis.name!r}: split {split!r} needs templates, subjects and hints of kind {kind!r} "
            "for at least two groups."
        )
    template_id = tpls[0] if template_id is None else template_id
    tpl = axis.templates[template_id]["text"]
    clean, corr, rows = [], [], []
    for i, subj in enumerate(subjects):
        k = len(groups)  # b = a shifted by 1 .. K-1, cycling, so every ordered pair of groups occurs
        a, b = groups[i % k], groups[(i + 1 + (i // k) % (k - 1)) % k]
        body = tpl.replace("{subject}", subj)
        clean.append(hint[a].replace("{subject}", subj) + " " + body)
        corr.append(hint[b].replace("{subject}", subj) + " " + body)
        rows.append(
            {
                "subject": subj,
                "template_id": template_id,
                "hint_kind": kind,
                "clean_group": a,
                "corrupted_group": b,
                "pair": "hint_swap",
            }
        )
    return _largest_length_group(
        model, clean, corr, pd.DataFrame(rows), n, seed, "drop" if align == "drop" else "end"
    )


def stereotype_swap_pairs(
    model, split: str = "test", template_id: int | None = None, n: int = 16, seed: int = 0
) -> PatchPairs:
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
            rows.append(
                {
                    "clean_occupation": m,
                    "corrupted_occupation": f,
                    "template_id": template_id,
                    "pair": "stereotype_swap",
                }
            )
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
        raise LftfError(
            "Clean and corrupted prompts give the same logit difference; the metric cannot be normalised."
        )
    base = logit_diff(he_id, she_id)

    def metric(logits: Tensor) -> Tensor:
        return (base(logits) - corrupted_value) / (clean_value - corrupted_value)

    return metric


def group_logit_diff(
    group_ids: Sequence[Sequence[int]], clean_idx: Sequence[int], corrupted_idx: Sequence[int]
) -> Metric:
    """Mean over pairs of log P(clean group) − log P(corrupted group) at the last position, each group's
    probability the sum over its words' (first) tokens. The softmax normaliser and any renormalisation over
    the axis's groups cancel, so this is also the difference of the log *renormalised* group probabilities;
    with one token per group it is logit(a) − logit(b), the gender metric for K = 2."""
    ids = [torch.tensor(g) for g in group_ids]
    ci, ki = list(clean_idx), list(corrupted_idx)

    def metric(logits: Tensor) -> Tensor:
        last = logits[:, -1] if logits.ndim == 3 else logits
        lse = torch.stack([last[:, g].logsumexp(-1) for g in ids], 1)  # [batch, K]
        rows = torch.arange(last.shape[0])
        return (lse[rows, ci] - lse[rows, ki]).mean()

    return metric


def normalized(base: Metric, clean_value: float, corrupted_value: float) -> Metric:
    """(m - m_corrupted) / (m_clean - m_corrupted): 1 = clean behaviour, 0 = corrupted behaviour."""
    if abs(clean_value - corrupted_value) < 1e-8:
        raise LftfError("Clean and corrupted prompts give the same metric value; it cannot be normalised.")

    def metric(logits: Tensor) -> Tensor:
        return (base(logits) - corrupted_value) / (clean_value - corrupted_value)

    return metric


@torch.no_grad()
def group_pair_metric(model, pairs: PatchPairs, axis) -> tuple[Metric, Metric, float, float]:
    """For :func:`axis_hint_pairs`: (normalised metric, raw metric, clean value, corrupted value)."""
    index = {g: k for k, g in enumerate(axis.group_names)}
    group_ids = first_token_ids(model, [g.words for g in axis.groups])
    raw = group_logit_diff(
        group_ids, [index[g] for g in pairs.df.clean_group], [index[g] for g in pairs.df.corrupted_group]
    )
    runner = Runner(model)
    clean = float(raw(runner.unembed(runner.run(runner.embed(pairs.clean))[:, -1])))
    corr = float(raw(runner.unembed(runner.run(runner.embed(pairs.corrupted))[:, -1])))
    return normalized(raw, clean, corr), raw, clean, corr


@torch.no_grad()
def pair_metric(
    model, pairs: PatchPairs, male: str = " he", female: str = " she"
) -> tuple[Metric, float, float]:
    """The normalised he-she logit-difference metric for these pairs, and the clean / corrupted values."""
    he, she = single_token_id(model, male), single_token_id(model, female)
    runner = Runner(model)
    ld = logit_diff(he, she)
    clean = float(ld(runner.unembed(runner.run(runner.embed(pairs.clean))[:, -1])))
    corr = float(ld(runner.unembed(runner.run(runner.embed(pairs.corrupted))[:, -1])))
    return normalized_logit_diff(he, she, clean, corr), clean, corr


__all__ = [
    "Metric",
    "PatchPairs",
    "axis_hint_pairs",
    "group_logit_diff",
    "group_pair_metric",
    "hint_swap_pairs",
    "logit_diff",
    "make_pairs",
    "normalized",
    "normalized_logit_diff",
    "pair_metric",
    "stereotype_swap_pairs",
]
