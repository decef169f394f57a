"""Logit lens: read each block's output through the final norm + unembedding.

Per block and prompt group (male-leaning / female-leaning occupations, he-hinted / she-hinted prompts): the
he − she logit difference and P(he), P(she) at the last position. Shows in which block the preference
appears and where a hint overrides it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from lftf_interp.data.datasets import load_dataset, sample_rows
from lftf_interp.errors import ConfigError
from lftf_interp.metrics.groups import bias_per_prompt
from lftf_interp.metrics.wordprobs import first_token_ids
from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode_batch, single_token_id


@torch.no_grad()
def compute_logit_lens(
    model,
    groups: Mapping[str, Sequence[str]],
    male: str = " he",
    female: str = " she",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Tidy frame: group, layer (block output; the last one is the model's own output), logit_diff (mean and
    sem over prompts), p_he, p_she, share_he, n."""
    he, she = single_token_id(model, male), single_token_id(model, female)
    runner = Runner(model)
    rows = []
    for group, prompts in groups.items():
        if len(prompts) == 0:
            raise ConfigError(f"Lens group {group!r} has no prompts.")
        ld = np.empty((runner.n_layers, len(prompts)))
        ph, ps = np.empty_like(ld), np.empty_like(ld)
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            ids, lengths = encode_batch(model, chunk)
            last = torch.arange(len(chunk)), lengths - 1
            for layer, _, resid, *_ in runner.walk(runner.embed(ids)):
                logits = runner.unembed(resid[last]).double()
                probs = logits.softmax(-1)
                ld[layer, s : s + len(chunk)] = (logits[:, he] - logits[:, she]).numpy()
                ph[layer, s : s + len(chunk)] = probs[:, he].numpy()
                ps[layer, s : s + len(chunk)] = probs[:, she].numpy()
            if progress:
                progress(len(chunk))
        for layer in range(runner.n_layers):
            rows.append(
                {
                    "group": group,
                    "layer": layer,
                    "logit_diff": ld[layer].mean(),
                    "logit_diff_sem": ld[layer].std(ddof=1) / np.sqrt(len(prompts))
                    if len(prompts) > 1
                    else np.nan,
                    "p_he": ph[layer].mean(),
                    "p_she": ps[layer].mean(),
                    "share_he": (ph[layer] / (ph[layer] + ps[layer])).mean(),
                    "n": len(prompts),
                }
            )
    return pd.DataFrame(rows)


@torch.no_grad()
def compute_group_lens(
    model, prompt_sets: Mapping[str, Sequence[str]], axis, batch_size: int = 64
) -> pd.DataFrame:
    """The lens on any bias axis: per prompt set and block output, the mean renormalised share of each group
    (share_<group>; a group's probability is the sum of its words' first tokens here), the bias score of
    those shares (mean and sem over prompts) and, for a set named "hinted <group>", hint following."""
    ids = first_token_ids(model, [g.words for g in axis.groups])
    ref = [axis.reference[g] for g in axis.group_names]
    runner = Runner(model)
    rows = []
    for name, prompts in prompt_sets.items():
        if len(prompts) == 0:
            raise ConfigError(f"Lens set {name!r} has no prompts.")
        probs = np.empty((runner.n_layers, len(prompts), len(ids)))
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s : s + batch_size])
            x, lengths = encode_batch(model, chunk)
            last = torch.arange(len(chunk)), lengths - 1
            for layer, _, resid, *_ in runner.walk(runner.embed(x)):
                p = runner.unembed(resid[last]).double().softmax(-1)
                probs[layer, s : s + len(chunk)] = torch.stack([p[:, g].sum(-1) for g in ids], 1).numpy()
        hinted = name.removeprefix("hinted ") if name.startswith("hinted ") else None
        for layer in range(runner.n_layers):
            q = probs[layer] / probs[layer].sum(1, keepdims=True)
            b = bias_per_prompt(probs[layer], ref)
            row = {
                "set": name,
                "layer": layer,
                **{f"share_{g}": float(q[:, k].mean()) for k, g in enumerate(axis.group_names)},
                "bias": float(b.mean()),
                "bias_sem": float(b.std(ddof=1) / np.sqrt(len(b))) if len(b) > 1 else np.nan,
                "mass": float(probs[layer].sum(1).mean()),
                "n": len(prompts),
            }
            if hinted in axis.group_names:
                row["hint_following"] = float(q[:, axis.group_names.index(hinted)].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def axis_lens_sets(axis, split: str = "test", n: int | None = 60, seed: int = 0) -> dict[str, list[str]]:
    """Neutral prompts and, per group, prompts hinting that group (``n`` of each, a seeded sample)."""
    bias = sample_rows(axis.bias_prompts(split), n, seed)
    sets = {"neutral": bias.prompt.tolist()}
    if axis.has_hints:
        hint = axis.hint_prompts(split)
        sets |= {
            f"hinted {g}": sample_rows(hint[hint.label == g], n, seed).prompt.tolist()
            for g in axis.group_names
        }
    return sets


def default_groups(split: str = "test", n: int | None = None, seed: int = 0) -> dict[str, list[str]]:
    """Male-/female-leaning occupations (BLS) from GenBiasEval and he-/she-hinted GenHintEval prompts."""
    bias = load_dataset("genbias", split)
    hint = load_dataset("genhint", split)
    return {
        "male-leaning": bias.subset(n=n, seed=seed, stereotype="male").prompts,
        "female-leaning": bias.subset(n=n, seed=seed, stereotype="female").prompts,
        "hinted he": hint.subset(n=n, seed=seed, label="he").prompts,
        "hinted she": hint.subset(n=n, seed=seed, label="she").prompts,
    }
