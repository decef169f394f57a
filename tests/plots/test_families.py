"""The cross-family figure draws one panel per model from the family rows and sweeps."""

import matplotlib

matplotlib.use("Agg")

from lftf_interp.experiments.families import families_to, sweep_table  # noqa: E402
from lftf_interp.plots.families import plot_families  # noqa: E402
from tests.experiments.test_families import write_run  # noqa: E402


def test_one_panel_per_model_with_marks(tmp_path):
    runs = {n: write_run(tmp_path / n) for n in ("a", "b")}
    rows = families_to(runs, tmp_path / "out")
    fig = plot_families(rows, {n: sweep_table(sw) for n, (_, sw) in runs.items()})
    panels = [ax for ax in fig.axes if ax.get_xlabel().startswith("relative depth")]
    assert len(panels) == 2
    labels = panels[0].get_legend_handles_labels()[1]
    assert {"BMI pick: 3", "best (bias+KL): 3", "last block: 5"} <= set(labels)
