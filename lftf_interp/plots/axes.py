"""Figures of the bias-axis study (notebook 05): the cross-bias transfer matrix, the axes' BMI profiles and
StereoSet before / after. Compute lives in :mod:`lftf_interp.experiments.transfer`; these only draw its tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lftf_interp.experiments.transfer import matrix
from lftf_interp.plots.style import themed


@themed
def plot_transfer(rows: pd.DataFrame, title: str = "") -> plt.Figure:
    """Two heatmaps, rows = the model (base, or LFTF on that axis), columns = the axis evaluated: bias score
    (lower is fairer) and hint following (higher is better)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, value, cmap, label in (
        (axes[0], "bias", "Reds", "bias score ↓"),
        (axes[1], "hint_following", "Greens", "hint following ↑"),
    ):
        m = matrix(rows, value)
        im = ax.imshow(m.to_numpy(float), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(m.shape[1]), m.columns, rotation=20)
        ax.set_yticks(range(m.shape[0]), [s if s == "base" else f"LFTF on {s}" for s in m.index])
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m.iat[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if v > 0.6 else "black",
                )
        ax.set(xlabel="evaluated on (test split)", title=label)
        ax.grid(False)
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.suptitle(title or "Cross-bias transfer")
    fig.tight_layout()
    return fig


@themed
def plot_bmi_profiles(profiles: pd.DataFrame, excluded=(), title: str = "") -> plt.Figure:
    """BMI per block for every axis's neutral prompts, the blocks set aside as embedding artefacts shaded."""
    fig, ax = plt.subplots(figsize=(10, 4))
    for a, d in profiles.groupby("axis", sort=False):
        d = d.sort_values("layer")
        ax.plot(d.layer, d.bmi, marker="o", ms=3, label=a)
    for b in excluded:
        ax.axvspan(b - 0.5, b + 0.5, color="grey", alpha=0.2)
    late = profiles[~profiles.layer.isin(list(excluded))]
    if len(late):
        ax.set_ylim(0, late.bmi.max() * 1.25)
    ax.set(
        xlabel="block",
        ylabel="BMI = mean 1 − cos(h_in, h_out)",
        title=title or f"BMI per axis (shaded: embedding-artefact blocks {list(excluded)}, off the scale)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@themed
def plot_stereoset(rows: pd.DataFrame, title: str = "") -> plt.Figure:
    """SS (50 ideal, with its CI over target terms) and ICAT per StereoSet bias type, for every model."""
    d = rows[rows.kind == "stereoset"]
    sources, types = list(dict.fromkeys(d.source)), list(dict.fromkeys(d.target))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    w = 0.8 / len(sources)
    for k, s in enumerate(sources):
        e = d[d.source == s].set_index("target").loc[types]
        x = np.arange(len(types)) + k * w
        lo, hi = np.array([c[0] for c in e.ss_ci]), np.array([c[1] for c in e.ss_ci])
        axes[0].bar(
            x, e.ss, w, yerr=[e.ss - lo, hi - e.ss], capsize=2, label=s if s == "base" else f"LFTF on {s}"
        )
        axes[1].bar(x, e.icat, w)
    for ax, label in ((axes[0], "SS (50 = no preference)"), (axes[1], "ICAT (100 ideal)")):
        ax.set_xticks(np.arange(len(types)) + 0.4 - w / 2, types)
        ax.set(ylabel=label)
    axes[0].axhline(50, color="grey", ls="--", lw=1)
    axes[0].set_ylim(30, 80)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(title or "StereoSet intrasentence per bias type, before and after LFTF on each axis")
    fig.tight_layout()
    return fig


__all__ = ["plot_bmi_profiles", "plot_stereoset", "plot_transfer"]
