"""The whole locate stage: BMI (+ held-out stability), patching, lens, attribution → tables and a JSON summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lftf_interp.configs import Config, setting
from lftf_interp.data.axis import DEFAULT_AXIS, BiasAxis, load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.errors import ConfigError
from lftf_interp.locate.attribution import attribution_patch
from lftf_interp.locate.bmi import bmi_stability, compute_bmi, top_block
from lftf_interp.locate.lens import axis_lens_sets, compute_group_lens, compute_logit_lens, default_groups
from lftf_interp.locate.pairs import (
    PatchPairs,
    axis_hint_pairs,
    group_pair_metric,
    hint_swap_pairs,
    stereotype_swap_pairs,
)
from lftf_interp.locate.patching import patch_every
from lftf_interp.store import write_json


@dataclass
class LocateConfig(Config):
    """What ``locate`` measures and on which prompts (``lftf locate``'s options are these fields)."""

    split: str = setting("test", "Prompts for BMI, patching pairs and the logit lens.")
    stability_split: str = setting("train", "Split whose BMI ranking the held-out stability compares with.")
    n_bmi: int | None = setting(None, "Prompts per split for BMI (default: all).")
    n_pairs: int = setting(8, "Clean/corrupted pairs for patching.")
    n_lens: int | None = setting(60, "Prompts for the logit lens (None: all).")
    pair_kind: str = setting(
        "hint_swap",
        "hint_swap, or stereotype_swap (an axis on GenBiasEval's occupation sets, such as gender).",
    )
    hint_kind: str | None = setting(
        None,
        "Hint kind of the patching pairs (default: noun on the occupation sets, else the axis's first kind).",
    )
    template_id: int | None = setting(None, "Template of the patching pairs (default: the split's first).")
    positions: str = setting("last", "BMI over the last position or all positions.")
    seed: int = setting(0, "Seed of the prompt subsets and pairs.")
    axis: str = setting(
        DEFAULT_AXIS,
        "A bias axis: a shipped name (gender, religion, religion-identity, race, race-choice, gender3, pronouns) or "
        "an axis file; BMI on its neutral prompts, patching on its hint-swap pairs.",
    )

    def __post_init__(self) -> None:
        if self.pair_kind not in ("hint_swap", "stereotype_swap"):
            raise ConfigError(f"pair_kind must be 'hint_swap' or 'stereotype_swap', got {self.pair_kind!r}")
        if self.n_pairs < 1:
            raise ConfigError("n_pairs must be >= 1")
        if self.positions not in ("last", "all"):
            raise ConfigError(f"positions must be 'last' or 'all', got {self.positions!r}")


def locate(
    model, cfg: LocateConfig, progress: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame | dict]:
    """Compute every locate table (no plotting)."""
    say = progress or (lambda s: None)
    say("BMI")
    axis = load_axis(cfg.axis)
    bias, held = (
        sample_rows(axis.bias_prompts(s), cfg.n_bmi, cfg.seed).prompt.tolist()
        for s in (cfg.split, cfg.stability_split)
    )
    bmi = compute_bmi(model, bias, cfg.positions)
    bmi_held = compute_bmi(model, held, cfg.positions)
    stability = bmi_stability(bmi_held, bmi)
    say("patching")
    pairs = patch_pairs(model, axis, cfg)
    metric, raw, ld_clean, ld_corr = group_pair_metric(model, pairs, axis)
    exact = patch_every(model, pairs, metric)
    by_block = patch_every(model, pairs, metric, per_position=False)
    say("attribution")
    attr = attribution_patch(model, pairs, metric=raw)
    merged = attr.merge(exact, on=["site", "layer", "pos"], suffixes=("_attr", "_exact"))
    agreement = {
        s: {
            "pearson_r": float(np.corrcoef(d.value_attr, d.value_exact)[0, 1]),
            "sign_agreement_where_exact_abs_gt_0.1": float(
                (np.sign(d.value_attr) == np.sign(d.value_exact))[d.value_exact.abs() > 0.1].mean()
            ),
        }
        for s, d in merged.groupby("site")
    }
    say("logit lens")
    if axis.occupation_sets:  # the BLS-leaning occupations and hinted prompts, read as logit(a) − logit(b)
        a, b = (g.words[0] for g in axis.groups)
        lens = compute_logit_lens(model, default_groups(cfg.split, cfg.n_lens, cfg.seed), a, b)
    else:
        lens = compute_group_lens(model, axis_lens_sets(axis, cfg.split, cfg.n_lens, cfg.seed), axis)
    summary = {
        "axis": cfg.axis,
        "top_block": top_block(bmi),
        "top5_bmi": bmi.nsmallest(5, "rank")[["layer", "bmi"]].to_dict("records"),
        "stability": stability,
        "pairs": {
            "n": len(pairs),
            "n_pos": pairs.n_pos,
            "n_dropped_unequal_length": pairs.n_dropped,
            "ld_clean": ld_clean,
            "ld_corrupted": ld_corr,
            "example": pairs.df.iloc[0][["clean_prompt", "corrupted_prompt"]].to_dict(),
        },
        "attribution_vs_exact": agreement,
        "by_block_top": {s: int(d.loc[d.value.idxmax(), "layer"]) for s, d in by_block.groupby("site")},
    }
    return {
        "bmi": bmi,
        "bmi_heldout": bmi_held,
        "patching": exact,
        "patching_by_block": by_block,
        "attribution": attr,
        "lens": lens,
        "summary": summary,
        "str_tokens": pairs.str_tokens,
    }


def patch_pairs(model, axis: BiasAxis, cfg: LocateConfig) -> PatchPairs:
    """The clean / corrupted pairs of ``cfg.pair_kind`` on ``axis``, with the clean and corrupted group of each
    (:func:`~lftf_interp.locate.pairs.group_pair_metric` reads them). On GenBiasEval's occupation sets
    (:attr:`~lftf_interp.data.axis.BiasAxis.occupation_sets`): GenHintEval's hint sentences for the first group
    (clean) and the second (corrupted), or male- and female-stereotyped occupations; else the axis's own hints."""
    if cfg.pair_kind == "stereotype_swap" and not axis.occupation_sets:
        raise ConfigError(
            f"pair_kind 'stereotype_swap' needs GenBiasEval's occupation stereotypes; axis {axis.name!r} has "
            "other prompts: use hint_swap."
        )
    if not axis.occupation_sets:
        return axis_hint_pairs(model, axis, cfg.split, cfg.hint_kind, cfg.template_id, cfg.n_pairs, cfg.seed)
    if cfg.pair_kind == "hint_swap":
        pairs = hint_swap_pairs(
            model, cfg.split, cfg.hint_kind or "noun", cfg.template_id, cfg.n_pairs, cfg.seed
        )
    else:
        pairs = stereotype_swap_pairs(model, cfg.split, cfg.template_id, cfg.n_pairs, cfg.seed)
    pairs.df["clean_group"], pairs.df["corrupted_group"] = axis.group_names[0], axis.group_names[1]
    return pairs


def save_locate(res: dict, out: Path, meta: dict) -> list[Path]:
    """A CSV per table and locate.json (summary + metadata); :func:`lftf_interp.plots.report.locate_figures` draws them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in ("bmi", "bmi_heldout", "patching", "patching_by_block", "attribution", "lens"):
        res[k].to_csv(out / f"{k}.csv", index=False)
        paths.append(out / f"{k}.csv")
    write_json(out / "locate.json", {**res["summary"], "meta": meta})
    paths.append(out / "locate.json")
    return paths
