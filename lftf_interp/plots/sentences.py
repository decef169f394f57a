"""Figures of bias in sentences (notebook 08): where the group's effect on a StereoSet sentence sits, block by
block, beside BMI on the template and on the sentences. Compute lives in :mod:`lftf_interp.locate.sentences`;
these only draw its tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from lftf_interp.plots.style import themed


@themed
def plot_sentence_blocks(
    shares: pd.DataFrame,
    bmi: pd.DataFrame,
    tuned: int | None = None,
    title: str = "",
    lens: pd.DataFrame | None = None,
) -> plt.Figure:
    """Left: each block's share of the sentence-vs-twin difference (attention and MLP outputs, and their sum);
    with ``lens`` (:func:`~lftf_interp.locate.sentences.pair_lens`) also the share of the model's own difference
    the logit lens shows after each block. Right: BMI per block on the template and on the sentence prefixes.
    ``tuned``: the block LFTF tunes, marked on both."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2))
    wide = shares.pivot(index="layer", columns="site", values="share").sort_index()
    width = 0.8 / len(wide.columns)
    for j, site in enumerate(wide.columns):  # side by side, the block's sum as a dot
        left.bar(
            wide.index + (j - (len(wide.columns) - 1) / 2) * width,
            wide[site],
            width,
            label=site.replace("_out", ""),
        )
    left.plot(wide.index, wide.sum(axis=1), "o", color="black", ms=3, label="block (sum)")
    if lens is not None:
        left.plot(
            lens.layer,
            lens.effect / lens.effect.iloc[-1],
            "-",
            color="tab:red",
            lw=1.2,
            label="lens (after block)",
        )
    left.axhline(0, color="black", lw=0.8)
    left.set(xlabel="block", ylabel="share of the twin difference restored", title="twin patching")
    for name, g in bmi.groupby("material"):
        g = g.sort_values("layer")
        right.plot(g.layer, g.bmi, marker="o", ms=3, label=name)
    right.set(xlabel="block", ylabel="BMI (1 − cos)", title="BMI", yscale="log")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if tuned is not None:
            ax.axvline(tuned, color="grey", ls="--", lw=1, label=f"LFTF block {tuned}")
        ax.legend(fontsize=8, loc="best", framealpha=0.6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["plot_sentence_blocks"]
