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

from ..data.datasets import load_dataset
from ..errors import ConfigError
from ..runner import LlamaRunner
from ..tokens import encode_batch, single_token_id


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
    runner = LlamaRunner(model)
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
            for layer, _, resid in runner.walk(runner.embed(ids)):
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
                    "logit_diff_sem": ld[layer].std(ddof=1) / np.sqrt(len(prompts)) if len(prompts) > 1 else np.nan,
                    "p_he": ph[layer].mean(),
                    "p_she": ps[layer].mean(),
                    "share_he": (ph[layer] / (ph[layer] + ps[layer])).mean(),
                    "n": len(prompts),
                }
            )
    return pd.DataFrame(rows)


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
