"""Data-parallel fine-tunes: two gloo processes under torchrun make the update one process (this one) makes on
the whole batch (LFTF, LoRA, FPFT), to float tolerance."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lftf_interp.errors import ConfigError
from lftf_interp.tune.parallel import shard

WORKER = Path(__file__).resolve().parents[1] / "ddp_worker.py"


def run(out: Path, n: int) -> None:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(n),
        "--master-port",
        str(29500 + n + os.getpid() % 500),
        str(WORKER),
        str(out),
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)


@pytest.mark.integration  # several processes
def test_two_processes_equal_one_on_the_same_global_batch(tmp_path):
    import ddp_worker

    (tmp_path / "one").mkdir()
    threads = torch.get_num_threads()
    try:
        ddp_worker.main(str(tmp_path / "one"))  # the single-process run, here
    finally:
        torch.set_num_threads(threads)
    run(tmp_path / "two", 2)
    for name in ("block", "lora", "full"):
        a, b = (
            load_file(tmp_path / "one" / f"{name}.safetensors"),
            load_file(tmp_path / "two" / f"{name}.safetensors"),
        )
        assert a.keys() == b.keys()
        assert a.pop("world").item() == 1 and b.pop("world").item() == 2
        for k in a:
            torch.testing.assert_close(b[k], a[k], atol=2e-6, rtol=1e-5, msg=f"{name}: {k}")
        moved = load_file(tmp_path / "one" / f"{name}.safetensors")["history_loss"]
        assert moved.abs().sum() > 0


def test_shard_is_the_whole_batch_in_one_process_and_a_batch_must_split(monkeypatch):
    from lftf_interp.tune import parallel

    idx = torch.arange(8)
    assert torch.equal(shard(idx), idx)
    monkeypatch.setattr(parallel, "world", lambda: (1, 4))
    assert shard(idx).tolist() == [2, 3]
    with pytest.raises(ConfigError, match="does not split over 4"):
        shard(torch.arange(6))
    with pytest.raises(ConfigError, match="multiple of 4"):
        parallel.check_batch(6)
