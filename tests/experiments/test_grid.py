import pytest

from lftf_interp.errors import Interrupted
from lftf_interp.experiments import grid
from lftf_interp.experiments.compare import CompareConfig, MethodSpec
from lftf_interp.experiments.grid import step_log
from lftf_interp.tune.checkpoint import read_checkpoint


def test_a_row_job_logs_each_validation_step(capsys):
    log = step_log("cda seed 0", 150)
    log(9, {"step": 9, "loss": 0.5})  # a step without validation: nothing
    log(10, {"step": 10, "loss": 0.123456, "val_afgb": 0.2049})
    assert capsys.readouterr().out == "cda seed 0: step 10/150, loss 0.1235, val AFGB 0.2049\n"


def test_a_row_stopped_during_training_resumes_to_the_same_row(tiny3_dir, tmp_path, monkeypatch):
    spec = MethodSpec("lftf", "block 2 alone", tune={"block": 2})
    budget = dict(
        steps=4, eval_every=2, checkpoint_every=2, batch_size=8, n_train=16, n_val=16, mass_weight=0.0
    )
    cfg = CompareConfig(budget=budget, n_boot=20)
    whole = grid._trained(spec, cfg, tiny3_dir, str(tmp_path / "a"), "lftf-s0", 0)
    steps: list[int] = []

    def stop_at_3(key, n):
        def log(step, row):
            steps.append(step)
            if steps == [1, 2, 3]:  # the first run only
                raise KeyboardInterrupt

        return log

    monkeypatch.setattr(grid, "step_log", stop_at_3)
    with pytest.raises(Interrupted):
        grid._trained(spec, cfg, tiny3_dir, str(tmp_path / "b"), "lftf-s0", 0)
    ckpt = grid.cache_of(tmp_path / "b") / "train" / "lftf-s0"
    assert read_checkpoint(ckpt)["step"] == 2 and steps == [1, 2, 3]
    resumed = grid._trained(spec, cfg, tiny3_dir, str(tmp_path / "b"), "lftf-s0", 0)
    assert steps == [1, 2, 3, 3, 4]  # steps 1 and 2 not trained again
    assert resumed["resumed_at_step"] == 2 and not ckpt.exists()
    assert resumed["best_step"] == whole["best_step"]
    for k in ("afgb", "afgb_paper", "ub", "mass"):  # scored from prefix residuals batched differently: 1e-8
        assert resumed[k] == pytest.approx(whole[k], abs=1e-6), k
