"""Cross-bias transfer: the matrix rows against direct evaluations, resuming, and the BMI-profile overlap."""

import json
from dataclasses import replace

import pandas as pd
import pytest

from lftf_interp.data import load_axis
from lftf_interp.errors import LftfError
from lftf_interp.experiments import pipeline
from lftf_interp.experiments.transfer import matrix, profile_overlap, transfer_to
from lftf_interp.metrics.groups import EvalConfig, evaluate, evaluate_axis
from lftf_interp.models.loading import load_model
from lftf_interp.tune import TuneConfig
from lftf_interp.tune.delta import apply_delta


def test_profile_overlap_on_hand_built_profiles():
    prof = pd.DataFrame(
        {
            "axis": ["a"] * 4 + ["b"] * 4,
            "layer": [0, 1, 2, 3] * 2,
            "bmi": [9.0, 0.1, 0.2, 0.3, 9.0, 0.3, 0.2, 0.1],
        }
    )
    o = profile_overlap(prof, exclude=[0], top=1).iloc[0]
    assert (
        o.spearman_rho == pytest.approx(-1.0) and o.top1_a == [3] and o.top1_b == [1] and o.shared_top == []
    )
    o = profile_overlap(prof, top=1).iloc[0]  # block 0 kept: both rank it first
    assert o.shared_top == [0]


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_transfer_rows_equal_direct_evaluations_and_resume(tiny3_dir, tmp_path):
    tuned = tmp_path / "axes"
    with pytest.raises(LftfError, match="No LFTF delta for axis"):
        transfer_to(tiny3_dir, tmp_path / "t", ("gender", "religion"), tuned, stereoset=False)
    cfg = TuneConfig(steps=2, eval_every=2, n_val=8, batch_size=4, axis="religion", hint_weight=0.5)
    pipeline.finetune_to(tiny3_dir, replace(cfg, block=2), tuned / "religion" / "finetune")
    cfg = TuneConfig(steps=2, eval_every=2, n_val=8, batch_size=4, axis="gender")
    pipeline.finetune_to(tiny3_dir, replace(cfg, block=1), tuned / "gender" / "finetune")
    rows = transfer_to(tiny3_dir, tmp_path / "t", ("gender", "religion"), tuned, stereoset=False)
    bias = matrix(rows, "bias")
    assert list(bias.index) == ["base", "gender", "religion"] and list(bias.columns) == ["gender", "religion"]
    base = load_model(str(tiny3_dir))
    m, _, _ = evaluate(base, EvalConfig(split="test"))
    assert bias.loc["base", "gender"] == pytest.approx(m["afgb"]) and matrix(rows, "hint_following").loc[
        "base", "gender"
    ] == pytest.approx(m["ub"])
    tuned_model = load_model(str(tiny3_dir))
    apply_delta(tuned_model, tuned / "religion" / "finetune" / "delta")
    r, _, _ = evaluate_axis(tuned_model, load_axis("religion"), "test")
    assert (
        bias.loc["religion", "religion"] == pytest.approx(r["bias"])
        and bias.loc["religion", "religion"] != bias.loc["base", "religion"]
    )
    n = len((tmp_path / "t" / "rows.jsonl").read_text().splitlines())
    again = transfer_to(tiny3_dir, tmp_path / "t", ("gender", "religion"), tuned, stereoset=False)
    assert len(again) == n == 6 and (tmp_path / "t" / "overlap.csv").is_file()
    assert json.loads((tmp_path / "t" / "config.json").read_text())["axes"] == ["gender", "religion"]
