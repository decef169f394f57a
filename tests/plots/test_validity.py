import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lftf_interp.plots import validity as vr


def test_plot_methods_draws_one_panel_per_quantity_with_base_and_target_lines():
    summary = pd.DataFrame(
        {
            "method": ["base", "prompt", "lftf"],
            "afgb": [0.3, 0.28, 0.1],
            "afgb_pm": [None, None, 0.02],
            "winobias_pro": [0.6, 0.6, 0.58],
            "math_acc": [0.42, 0.42, 0.40],
        }
    )
    fig = vr.plot_methods(
        summary, [c for c in vr.PANELS if c[0] in ("afgb", "winobias_pro", "math_acc", "a_s")]
    )
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "AFGB (ours) ↓",
        "WinoBias pro-pref → 0.5",
        "arithmetic acc ↑",
    ]
    wino = visible[1]
    assert len(wino.patches) == 2  # the prompt baseline is left out (its probes carry no instruction)
    assert sorted(round(line.get_ydata()[0], 2) for line in wino.lines if len(line.get_ydata()) == 2) == [
        0.5,
        0.6,
    ]
    plt.close(fig)


def test_plot_restore_and_long_context():
    curve = pd.DataFrame(
        {
            "kind": ["head", "head", "head", "neuron", "neuron", "neuron"],
            "k": [1, 1, 1, 16, 16, 16],
            "order": ["top", "random", "random", "top", "random", "top-dla"],
            "bias_returned": [0.5, 0.1, 0.2, 0.3, 0.0, 0.6],
        }
    )
    fig = vr.plot_restore(curve)
    assert [ax.get_title() for ax in fig.axes] == ["head", "neuron"]
    assert list(fig.axes[0].lines[0].get_ydata()) == [50.0]
    assert [list(line.get_ydata()) for line in fig.axes[1].lines[:2]] == [
        [30.0],
        [60.0],
    ]  # weight change, then attribution
    plt.close(fig)
    attr = pd.DataFrame(
        {
            "kind": ["neuron"] * 3 + ["head"],
            "unit": [0, 1, 2, 0],
            "dla_before": [0.3, 0.0, -0.1, 1.0],
            "dla_after": [0.1, 0.0, -0.1, 1.0],
            "dla_change": [-0.2, 0.0, 0.0, 0.0],
            "rank": [1, 2, 3, 1],
            "weight_change": [0.1, 0.2, 0.3, 0.0],
        }
    )
    fig = vr.plot_attribution(attr, top=1)
    assert len(fig.axes[0].collections[0].get_offsets()) == 3  # neurons only
    assert [t.get_text() for t in fig.axes[0].texts] == ["0"]
    plt.close(fig)
    paths = pd.DataFrame(
        {
            "component": ["embed", "attn0", "mlp0", "attn1", "mlp1"],
            "layer": [-1, 0, 0, 1, 1],
            "kind": ["embed", "attn", "mlp", "attn", "mlp"],
            "own": [0.0, -0.3, -0.1, 0.0, -0.2],
            "scale": [0.01, 0.02, 0.0, 0.0, 0.03],
        }
    )
    fig = vr.plot_paths(paths, block=0)
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert bars == [
        -0.3,
        0.0,
        -0.1,
        -0.2,
        pytest.approx(0.06),
    ]  # attention per block, MLP per block, then scale
    plt.close(fig)
    lc = pd.DataFrame(
        {
            "context": [0, 64],
            "afgb": [0.3, 0.6],
            "afgb_ci": ["[0.28, 0.32]", "[0.5, 0.7]"],
            "afgb_paper": [0.08, 0.2],
            "ub": [0.8, 0.9],
        }
    )
    fig = vr.plot_long_context({"base": lc, "lftf": lc.assign(afgb=[0.1, 0.4])})
    assert len(fig.axes[0].lines) == 2 and list(fig.axes[0].lines[1].get_ydata()) == [0.1, 0.4]
    plt.close(fig)


def test_plot_holdout_and_sweep():
    rows = pd.DataFrame({"held_out": ["noun", "name"], "ub_held_out": [0.9, 0.7]})
    base = {"ub_kind_noun": 0.9, "ub_kind_name": 0.8, "afgb": 0.3}
    fig = vr.plot_holdout(rows, base, {"ub_kind_noun": 1.0, "ub_kind_name": 1.0})
    assert [round(p.get_height(), 2) for p in fig.axes[0].patches] == [0.9, 0.8, 1.0, 1.0, 0.9, 0.7]
    plt.close(fig)
    sweep = pd.DataFrame(
        {
            "block": [8, 2],
            "afgb": [0.1, 0.2],
            "math_acc": [0.4, 0.41],
            "gendered_acc": [0.9, 0.95],
            "winobias_pro": [0.6, 0.59],
        }
    )
    fig = vr.plot_sweep_probes(sweep, base)
    assert list(fig.axes[0].lines[0].get_xdata()) == [2, 8]
    plt.close(fig)
