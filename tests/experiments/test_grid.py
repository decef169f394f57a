from lftf_interp.experiments.grid import step_log


def test_a_row_job_logs_each_validation_step(capsys):
    log = step_log("cda seed 0", 150)
    log(9, {"step": 9, "loss": 0.5})  # a step without validation: nothing
    log(10, {"step": 10, "loss": 0.123456, "val_afgb": 0.2049})
    assert capsys.readouterr().out == "cda seed 0: step 10/150, loss 0.1235, val AFGB 0.2049\n"
