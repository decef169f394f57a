"""Is the block that carries sentence bias the block that carries template bias? ``lftf locate-sentences``:
twin patching and BMI on StereoSet sentences cut before their blank (:mod:`lftf_interp.locate.sentences`),
beside BMI on the axis's template prompts, for one model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from lftf_interp.data import NEUTRAL_PROMPTS, load_axis
from lftf_interp.data.datasets import sample_rows
from lftf_interp.errors import ConfigError
from lftf_interp.experiments.rundir import describe_run, write_json
from lftf_interp.locate import compute_bmi
from lftf_interp.locate.choose import AUTO, BlockChoice, artefact_blocks, rank_for_tuning
from lftf_interp.locate.sentences import blank_prefixes, pair_lens, per_block, top_blocks, twin_patching
from lftf_interp.models.loading import load_model
from lftf_interp.retain.stereoset import load_stereoset
from lftf_interp.store import write_atomic


def _with_counterparts(axis: str):
    ax = load_axis(axis)
    if not ax.counterparts:
        raise ConfigError(f"axis {axis!r} declares no counterparts; twin patching needs them.")
    return ax


def _twin_shares(bridge, ax, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prefix / twin pairs of ``split``'s StereoSet items of the axis's bias type, and their patching shares."""
    items = load_stereoset(None if ax.stereoset == "overall" else (ax.stereoset,), split=split)
    prefixes = blank_prefixes(bridge, items, ax.counterparts)
    return prefixes, twin_patching(bridge, prefixes)


def twin_blocks(
    bridge, top_k: int = 3, exclude: str | Sequence[int] = AUTO, axis: str = "gender"
) -> list[int]:
    """The ``top_k`` blocks twin patching ranks first on the fit terms' StereoSet sentences (sorted), past
    ``exclude`` (``"auto"``: the embedding-artefact blocks BMI sets aside on the axis's template prompts): what a
    method tuning where sentence bias sits trains (``block: "twin"``)."""
    ax = _with_counterparts(axis)
    excluded = (  # BMI runs only to find the artefact blocks
        rank_for_tuning(bridge, 1, exclude, axis=axis).excluded if isinstance(exclude, str) else list(exclude)
    )
    return sorted(top_blocks(_twin_shares(bridge, ax, "fit")[1], top_k, excluded))


def locate_sentences_to(
    model: str, out: Path, axis: str = "gender", split: str = "fit", n: int = 64, seed: int = 0
) -> dict:
    """On the StereoSet items of ``split``'s target terms of the axis's bias type (the axis needs counterparts):
    each block's share of the prefix-vs-twin difference (attention and MLP outputs), BMI on the prefixes, and
    BMI on ``n`` of the axis's template training prompts, each with its top three blocks past the
    embedding-artefact blocks (the template's set aside for the patching too), and the pair lens (the group's
    effect read through the logit lens after each block; ``lens_half_block``: the first block past which at least
    half of the model's own effect is there). → OUT/twin_patching.csv, OUT/pair_lens.csv, OUT/bmi.csv,
    OUT/locate_sentences.json."""
    ax = _with_counterparts(axis)
    bridge = load_model(model)
    prefixes, shares = _twin_shares(bridge, ax, split)
    lens = pair_lens(bridge, prefixes)
    template = sample_rows(ax.bias_prompts("train"), n, seed).prompt.tolist()
    neutral = compute_bmi(bridge, NEUTRAL_PROMPTS)
    frames, bmi_top = [], {}
    for name, prompts in (("template", template), ("sentence prefixes", prefixes.prefix.tolist())):
        bmi = compute_bmi(bridge, prompts, batch_size=8)
        choice = BlockChoice([], artefact_blocks(bmi, neutral), bmi, neutral)
        frames.append(bmi.assign(material=name))
        bmi_top[name] = {"top3": choice.ranked[:3], "excluded": choice.excluded}
    bmi_all = pd.concat(frames, ignore_index=True)
    by = {m: g.set_index("layer").bmi.sort_index() for m, g in bmi_all.groupby("material")}
    share = per_block(shares)
    top = top_blocks(shares, 3, bmi_top["template"]["excluded"])
    summary = {
        "n_pairs": len(prefixes),
        **{k: int(v) for k, v in prefixes.attrs.items()},
        "effect": float(shares.effect.iloc[0]),
        "patching_top3": top,  # past the template's embedding-artefact blocks
        "patching_share_top3": [float(share[b]) for b in top],
        "patching_share": [float(x) for x in share],
        "bmi": bmi_top,
        "spearman_bmi_template_vs_prefixes": float(
            spearmanr(by["template"], by["sentence prefixes"]).statistic
        ),
        "spearman_patching_vs_template_bmi": float(spearmanr(share, by["template"]).statistic),
        "lens_effect": [float(x) for x in lens.effect],
        "lens_half_block": _half_block(lens.effect.tolist()),
        "run": describe_run(model=model, axis=axis, split=split, n=n, seed=seed),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "twin_patching.csv", shares.to_csv(index=False))
    write_atomic(out / "pair_lens.csv", lens.to_csv(index=False))
    write_atomic(out / "bmi.csv", bmi_all[["material", "layer", "bmi", "sem", "rank"]].to_csv(index=False))
    write_json(out / "locate_sentences.json", summary)
    return summary


def _half_block(effect: list[float]) -> int | None:
    """The first block after which the lens shows at least half the final effect, in its sign (None: no effect)."""
    final = effect[-1]
    if final == 0:
        return None
    return next(b for b, e in enumerate(effect) if e / final >= 0.5)


__all__ = ["locate_sentences_to", "twin_blocks"]
