import json

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


def test_an_out_holding_another_commands_results_is_refused_unless_forced(tmp_path):
    from lftf_interp.experiments.rundir import OWNER, claim_out

    (tmp_path / "ft" / "delta").mkdir(parents=True)  # a fine-tune's folder (written before OWNER existed)
    with pytest.raises(LftfError, match=r"holds the results of `lftf finetune`; `lftf evaluate` would"):
        with claim_out(tmp_path / "ft", "evaluate"):
            pass
    with claim_out(tmp_path / "ft", "finetune"):  # its own command resumes there
        pass
    with claim_out(tmp_path / "ft", "evaluate", force=True):
        pass
    assert json.loads((tmp_path / "ft" / OWNER).read_text()) == {"command": "evaluate"}
    with claim_out(tmp_path / "ft", "paths", shares=("evaluate",)):  # commands that share a folder
        pass
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "genbias_prompts.csv").write_text("prompt\n")  # an evaluation written before OWNER
    with pytest.raises(LftfError, match=r"holds the results of `lftf evaluate`; `lftf finetune` would"):
        with claim_out(tmp_path / "ev", "finetune"):
            pass


def test_a_second_command_on_an_out_in_use_is_refused(tmp_path):
    from lftf_interp.experiments.rundir import claim_out

    with claim_out(tmp_path / "o", "finetune"):
        with pytest.raises(LftfError, match="is in use by another lftf command"):
            with claim_out(tmp_path / "o", "finetune"):
                pass
    with claim_out(tmp_path / "o", "finetune"):  # the lock goes with the command that held it
        pass


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: (p.write_text("x"), p)[1], "is a file"),
        (lambda p: (p.write_text("x"), p / "a" / "b")[1], "which is a file"),
    ],
    ids=["a-file", "under-a-file"],
)
def test_an_out_that_cannot_be_a_folder_is_refused(tmp_path, make, says):
    from lftf_interp.experiments.rundir import claim_out

    out = make(tmp_path / "f")
    with pytest.raises(LftfError, match=says):
        with claim_out(out, "evaluate"):
            pass


def test_an_unwritable_out_is_refused(tmp_path, monkeypatch):
    from lftf_interp.experiments import rundir

    monkeypatch.setattr(rundir.os, "access", lambda *a: False)  # as a folder of another user (not as root)
    with pytest.raises(LftfError, match="is not writable by you"):
        with rundir.claim_out(tmp_path / "ro", "evaluate"):
            pass


def test_a_refused_command_leaves_no_folder_behind(tmp_path):
    from lftf_interp.experiments.rundir import claim_out

    with pytest.raises(LftfError, match="bad input"):
        with claim_out(tmp_path / "a" / "b", "evaluate"):
            raise LftfError("bad input")
    assert not (tmp_path / "a").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(LftfError):
        with claim_out(tmp_path / "kept", "evaluate"):
            raise LftfError("bad input")
    assert (tmp_path / "kept").is_dir()  # it was there before
    assert {p.name for p in (tmp_path / "kept").iterdir()} <= {".lftf.lock"}  # and no owner mark
