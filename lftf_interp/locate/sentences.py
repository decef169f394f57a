"""Locate bias in sentences: which blocks carry the group's effect on a StereoSet sentence's attribute.

An intrasentence item ("My mother is very BLANK." with the fillings "comforting" / "obnoxious") is cut before its
blank: the prefix ("My mother is very") and its twin about the other group ("My father is very", the axis's
counterparts swapped). The metric at the prefix's last position is the stereotype filling's logit minus the
anti-stereotype's (their first tokens), so it is the template form of the sentence's preference.

* **twin patching**: each block's attention and MLP output (all positions at once) patched from the prefix into
  its twin's run, pairs of one token length batched together (twins of other lengths are aligned from the end,
  :func:`~lftf_interp.locate.pairs.make_pairs`' ``align="end"``). A block's share is the metric restored, pooled
  over pairs: Σ (m_patched − m_twin) / Σ (m_prefix − m_twin); 1 = the block's output carries the whole
  difference the group makes.
* **the pair lens**: each block's output at the prefix's last position read through the final norm and the
  unembedding (the logit lens), the same metric on the prefix and on its twin: per block, their mean and the mean
  difference (the group's effect so far; the last block's is the model's own, ``effect`` above).
* **BMI on the prefixes**: :func:`~lftf_interp.locate.bmi.compute_bmi` on the same prefixes, to set beside the
  template's.

Items whose prefix names no counterpart word, whose two fillings start with the same token, or whose sentences do
not read as the context with its blank filled are left out and counted (``n_no_twin``, ``n_same_first``,
``n_mismatch``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from lftf_interp.data.counterfactual import swap_counterparts
from lftf_interp.errors import LftfError
from lftf_interp.locate.pairs import make_pairs
from lftf_interp.locate.patching import PatchOptions, patch_sweep
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode, encode_batch

BLANK = "BLANK"


def blank_prefixes(model, items: pd.DataFrame, counterparts: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """StereoSet intrasentence ``items`` (context with BLANK, stereotype, anti-stereotype) → one row per usable
    item: prefix, twin, stereo_id and anti_id (the fillings' first tokens after the prefix); ``attrs`` counts
    the items left out (module doc)."""
    rows, no_twin, same, mismatch = [], 0, 0, 0
    tok = model.tokenizer
    for r in items.to_dict("records"):
        ctx = str(r["context"])
        start = ctx.find(BLANK)
        head, rest = ctx[:start], ctx[start + len(BLANK) :]
        fills = []
        for sentence in (str(r["stereotype"]), str(r["anti-stereotype"])):
            if start < 0 or not (sentence.startswith(head) and sentence.endswith(rest)):
                break
            word = sentence[start : len(sentence) - len(rest)].strip()
            fills.append(tok.encode(" " + word, add_special_tokens=False)[:1] if word else [])
        if len(fills) < 2 or not all(fills):
            mismatch += 1
            continue
        prefix = head.rstrip()
        twin = swap_counterparts(prefix, counterparts) if prefix else None
        if twin is None:
            no_twin += 1
            continue
        if fills[0] == fills[1]:
            same += 1
            continue
        rows.append(
            {
                "target": r["target"],
                "prefix": prefix,
                "twin": twin,
                "stereo_id": fills[0][0],
                "anti_id": fills[1][0],
            }
        )
    out = pd.DataFrame(rows)
    out.attrs.update(n_items=len(items), n_no_twin=no_twin, n_same_first=same, n_mismatch=mismatch)
    return out


def _metric(stereo: torch.Tensor, anti: torch.Tensor):
    def metric(logits: torch.Tensor) -> torch.Tensor:
        last = logits[:, -1] if logits.ndim == 3 else logits
        rows = torch.arange(last.shape[0])
        return (last[rows, stereo] - last[rows, anti]).sum()  # summed over pairs: pooled below

    return metric


def twin_patching(
    model, prefixes: pd.DataFrame, sites: Sequence[str] = ("attn_out", "mlp_out"), batch_size: int = 16
) -> pd.DataFrame:
    """Per site and block: the share of the prefix-vs-twin metric difference restored by patching the block's
    output (module doc); ``effect`` is the mean difference itself (nats of logit)."""
    if prefixes.empty:
        raise LftfError("No item has a prefix with a twin; nothing to patch.")
    lengths = [
        (len(encode(model, p)), len(encode(model, t)))
        for p, t in zip(prefixes.prefix, prefixes.twin, strict=True)
    ]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(lengths):
        groups.setdefault(key, []).append(i)
    restored: dict[tuple[str, int], float] = {}
    total = 0.0
    for idx in groups.values():
        g = prefixes.iloc[idx].reset_index(drop=True)
        pairs = make_pairs(model, g.prefix.tolist(), g.twin.tolist(), align="end")
        metric = _metric(torch.tensor(g.stereo_id.to_numpy()), torch.tensor(g.anti_id.to_numpy()))
        for site in sites:
            df = patch_sweep(
                model, pairs, metric, site, False, PatchOptions(batch_size=batch_size, skip_noops=False)
            )
            clean = _value(model, pairs.clean, metric)
            corr = _value(model, pairs.corrupted, metric)
            for layer, v in zip(df.layer, df.value, strict=True):
                restored[site, int(layer)] = restored.get((site, int(layer)), 0.0) + (v - corr)
            if site == sites[0]:
                total += clean - corr
    if abs(total) < 1e-8:
        raise LftfError("The prefixes and their twins give the same metric; no share can be restored.")
    n = len(prefixes)
    return pd.DataFrame(
        [
            {"site": s, "layer": layer, "share": v / total, "effect": total / n}
            for (s, layer), v in restored.items()
        ]
    ).sort_values(["site", "layer"], ignore_index=True)


@torch.no_grad()
def _value(model, tokens: torch.Tensor, metric) -> float:
    runner = Runner(model)
    return float(metric(runner.unembed(runner.run(runner.embed(tokens))[:, -1])))


@torch.no_grad()
def pair_lens(model, prefixes: pd.DataFrame, batch_size: int = 32) -> pd.DataFrame:
    """Per block (the last is the model's output): ``prefix`` and ``twin``, the mean stereotype-minus-anti
    logit through the logit lens on each, and ``effect`` = the mean of their difference with its ``effect_sem``
    over pairs (module doc)."""
    if prefixes.empty:
        raise LftfError("No item has a prefix with a twin; nothing to read.")
    runner = Runner(model)
    n = len(prefixes)
    m = np.empty((2, runner.n_layers, n))  # [prefix / twin, block, pair]
    stereo, anti = torch.tensor(prefixes.stereo_id.to_numpy()), torch.tensor(prefixes.anti_id.to_numpy())
    for k, column in enumerate(("prefix", "twin")):
        texts = prefixes[column].tolist()
        for s in range(0, n, batch_size):
            ids, lengths = encode_batch(model, texts[s : s + batch_size])
            rows = torch.arange(len(lengths))
            for layer, _, resid, *_ in runner.walk(runner.embed(ids)):
                logits = runner.unembed(resid[rows, lengths - 1]).double()
                m[k, layer, s : s + len(rows)] = (
                    logits[rows, stereo[s : s + batch_size]] - logits[rows, anti[s : s + batch_size]]
                ).numpy()
    d = m[0] - m[1]  # [block, pair]
    return pd.DataFrame(
        {
            "layer": np.arange(runner.n_layers),
            "prefix": m[0].mean(1),
            "twin": m[1].mean(1),
            "effect": d.mean(1),
            "effect_sem": d.std(1, ddof=1) / np.sqrt(n) if n > 1 else np.nan,
        }
    )


def top_blocks(shares: pd.DataFrame, k: int = 3, exclude: Sequence[int] = ()) -> list[int]:
    """Blocks ranked by their summed attention + MLP share, top ``k`` past ``exclude`` (e.g. the
    embedding-artefact blocks BMI sets aside: block 0's MLP reads the group word itself)."""
    per = shares.groupby("layer")["share"].sum()
    ranked = [int(b) for b in per.sort_values(ascending=False, kind="stable").index]
    return [b for b in ranked if b not in set(exclude)][:k]


def per_block(shares: pd.DataFrame) -> np.ndarray:
    return shares.groupby("layer")["share"].sum().to_numpy()


__all__ = ["blank_prefixes", "pair_lens", "per_block", "top_blocks", "twin_patching"]
