import pytest

from lftf_interp.errors import LftfError
from lftf_interp.experiments.rundir import merged_rows


def test_a_fill_adds_only_what_the_row_lacks_and_must_be_the_same_model():
    row = {"method": "m", "seed": 0, "afgb": 0.25, "wall_s": 100.0, "probes": ["math"], "math_acc": 0.5}
    other = {"method": "m", "seed": 1, "afgb": 0.30, "probes": ["math"]}
    fill = {
        "method": "m",
        "seed": 0,
        "afgb": 0.25,
        "wall_s": 7.0,
        "probes": ["stereoset"],
        "fill": ["stereoset"],
    }
    got = merged_rows([row, other, {**fill, "ss_gender": 61.0, "math_acc": 0.9}])
    assert got == [
        {**row, "probes": ["math", "stereoset"], "ss_gender": 61.0},  # math_acc and wall_s stay the row's
        other,
    ]
    assert row["probes"] == ["math"]  # the stored rows are not changed
    with pytest.raises(LftfError, match="not the same model"):
        merged_rows([row, {**fill, "afgb": 0.25 + 2e-5}])
    with pytest.raises(LftfError, match="at best step 90, the stored row 0.2500000 at step 150"):
        merged_rows([{**row, "best_step": 150}, {**fill, "best_step": 90}])
    # float32 reduction order (another thread count) moves a rerun's AFGB by ~1e-6: the same model
    assert merged_rows([row, {**fill, "afgb": 0.25 + 1.4e-6}])[0]["probes"] == ["math", "stereoset"]
    with pytest.raises(LftfError, match="no row of its own"):
        merged_rows([other, fill])
