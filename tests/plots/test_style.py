"""Importing the plotting modules changes no global state; a figure is drawn under the theme and leaves the
caller's rcParams as they were."""

import subprocess
import sys

import matplotlib as mpl
import numpy as np
import pandas as pd

from lftf_interp.plots.report import plot_bmi
from lftf_interp.plots.style import theme_rc


def test_importing_the_plots_sets_no_backend_and_no_rcparams():
    code = (
        "import matplotlib as mpl, seaborn as sns; before = dict(mpl.rcParams); b0 = mpl.rcParams._get_backend_or_none(); "
        "import lftf_interp.plots.report, lftf_interp.plots.validity, lftf_interp.plots.axes, lftf_interp.plots.families; "
        "changed = sorted(k for k, v in mpl.rcParams.items() if before[k] != v); "
        "print(changed, mpl.rcParams._get_backend_or_none() == b0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[] True"


def test_a_figure_is_themed_and_the_rcparams_are_restored():
    before = dict(mpl.rcParams)
    fig = plot_bmi(pd.DataFrame({"layer": range(3), "bmi": [0.1, 0.2, 0.3], "rank": [3, 2, 1]}))
    assert dict(mpl.rcParams) == before
    assert theme_rc()["axes.grid"] is True and fig.axes[0].xaxis._major_tick_kw.get("gridOn") is True
    assert np.allclose(
        mpl.colors.to_rgba(fig.axes[0].spines["left"].get_edgecolor()),
        mpl.colors.to_rgba(theme_rc()["axes.edgecolor"]),
    )  # seaborn's light-grey frame
