"""Checkpoints: whole or absent, checked on read, resumed only by the same config and before anything loads;
a SIGKILLed CLI fine-tune resumes to a byte-identical delta."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import lftf

from lftf_interp.errors import Interrupted, LftfError
from lftf_interp.experiments import pipeline


def _finetune(model_dir, out, *extra):
    return [
        sys.executable,
        "-m",
        "lftf_interp.cli.main",
        "finetune",
        "--model",
        str(model_dir),
        "--block",
        "2",
        "--steps",
        "60",
        "--batch-size",
        "4",
        "--n-train",
        "32",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "5",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.integration  # a whole pipeline, over 12 s
def test_sigkill_then_resume_gives_the_same_delta_bytes(tiny3_dir, tmp_path):
    # every run in its own process with one thread: CPU matmuls sum in another order under another thread count
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _finetune(tiny3_dir, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    latest = killed / "checkpoint" / "latest"
    deadline = time.monotonic() + 600
    while not latest.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    step = int(latest.read_text().split("-")[1])
    assert 5 <= step < 60 and not (killed / "delta").exists()
    assert json.loads((killed / "checkpoint" / latest.read_text() / "state.json").read_text())["threads"] == 1
    resumed = subprocess.run(
        _finetune(tiny3_dir, killed, "--resume"), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = tmp_path / "whole"
    done = subprocess.run(
        _finetune(tiny3_dir, whole), env=env, capture_output=True, text=True
    )  # uninterrupted
    assert done.returncode == 0, done.stderr[-2000:]
    for f in ("delta.safetensors", "delta.json"):
        assert (killed / "delta" / f).read_bytes() == (whole / "delta" / f).read_bytes(), f
    assert (killed / "history.csv").read_bytes() == (whole / "history.csv").read_bytes()


def test_resume_under_another_thread_count_warns(tmp_path, monkeypatch, caplog):
    import torch

    from lftf_interp.tune.checkpoint import check_resume, save_checkpoint

    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.AdamW([w])
    save_checkpoint(
        tmp_path / "checkpoint", 5, {"w": w}, opt, [], {"step": 0, "val": None, "params": None}, {"a": 1}
    )
    threads = torch.get_num_threads()
    with caplog.at_level("WARNING"):
        assert check_resume(tmp_path, {"a": 1})["threads"] == threads
    assert not caplog.records
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    with caplog.at_level("WARNING"):
        check_resume(tmp_path, {"a": 1})
    assert f"OMP_NUM_THREADS={threads}" in caplog.text and f"with {threads + 1} CPU threads" in caplog.text


def test_interrupt_inside_a_checkpoint_write_names_the_step_on_disk(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) that lands after ``latest`` is renamed but before save_checkpoint returns still
    names the checkpoint just written; before any checkpoint it says none was written."""
    import torch

    from lftf_interp.tune import checkpoint, train
    from lftf_interp.tune.checkpoint import latest_step

    assert latest_step(None) is None and latest_step(tmp_path / "checkpoint") is None
    w = torch.nn.Parameter(torch.ones(2))
    cfg = train.TuneConfig(steps=9, checkpoint_every=2, eval_every=100)

    def objective(step):
        return (w * step).sum(), {}

    def validate(step):
        return {"val_afgb": 1.0}

    real_rmtree = checkpoint.shutil.rmtree

    def interrupt_after_the_rename(path, ignore_errors=False):
        if "step-000004" in str((tmp_path / "checkpoint" / "latest").read_text()):
            raise KeyboardInterrupt
        real_rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", interrupt_after_the_rename)
    with pytest.raises(Interrupted, match=r"checkpoint of step 4 in"):
        train._loop(cfg, {"w": w}, validate, objective, tmp_path, False, None)
    assert latest_step(tmp_path / "checkpoint") == 4
    (tmp_path / "checkpoint" / "latest").write_text("not-a-step")
    assert latest_step(tmp_path / "checkpoint") is None

    def ctrl_c(step, row):
        raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="no checkpoint was written yet"):
        train._loop(cfg, {"w": w}, validate, objective, tmp_path / "fresh", False, ctrl_c)


def test_resume_is_checked_before_anything_loads(tmp_path, no_model):
    res = lftf("finetune", "--model", "smollm2-135m", "--resume", "--out", tmp_path / "none")
    assert res.exit_code == 2 and "Nothing to resume" in res.output, res.output


def test_resume_refuses_another_config_and_auto_reuses_the_chosen_block(tiny3_dir, tmp_path):
    from lftf_interp.tune import TuneConfig

    cfg = TuneConfig(steps=6, batch_size=4, n_train=16, n_val=8, eval_every=3, lr=1e-3, checkpoint_every=3)

    def ctrl_c(step, row):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="step 3"):
        pipeline.finetune_to(tiny3_dir, cfg, tmp_path, progress=ctrl_c)
    chosen = json.loads((tmp_path / "block_choice.json").read_text())
    with pytest.raises(LftfError, match=r"different config \(loss: checkpoint 'balanced', now 'paper'\)"):
        pipeline.finetune_to(tiny3_dir, {**cfg.to_dict(), "loss": "paper"}, tmp_path, resume=True)
    with pytest.raises(LftfError, match=r"different config \(block: checkpoint \[\d\], now \[\d\]\)"):
        other = 1 if chosen["blocks"] != [1] else 2
        pipeline.finetune_to(tiny3_dir, {**cfg.to_dict(), "block": [other]}, tmp_path, resume=True)
    run = pipeline.finetune_to(tiny3_dir, cfg, tmp_path, resume=True)
    assert run.result.blocks == chosen["blocks"] and run.choice == chosen


def test_sigterm_ends_a_finetune_like_ctrl_c_with_status_143(tiny3_dir, tmp_path):
    """What SLURM sends at a time limit: one line naming the checkpoint to resume from, exit status 143."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "termed"
    proc = subprocess.Popen(
        _finetune(tiny3_dir, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    latest = out / "checkpoint" / "latest"
    deadline = time.monotonic() + 300
    while not latest.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    said = proc.communicate()[0]
    assert proc.returncode == 143, said[-2000:]
    lines = [x for x in said.splitlines() if x.startswith("terminated")]
    assert len(lines) == 1 and "rerun with --resume" in lines[0] and "checkpoint of step" in lines[0], said
    assert "Traceback" not in said and not (out / "delta").exists()
