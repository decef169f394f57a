"""A grid's rows as jobs: in this process (``inline``, the default), or one job per row through submitit, on
this machine (``local``: processes) or on a SLURM cluster (``slurm``).

Each job runs one row function with its own arguments (seed included) and writes the row to
``FOLDER/<key>/row.json`` (atomically); its logs are ``FOLDER/<key>/*_log.{out,err}``. This process is the only
writer of the grid's ``rows.jsonl``: it records a row when its job has finished, in the order jobs finish, so a
job that finishes late or is retried never doubles or loses a row. A row already recorded is never submitted;
a ``row.json`` left by a job that finished after its driver stopped is recorded without rerunning; a job that
died (killed, out of time) left no ``row.json`` and runs again on the next call. A job that raises is reported
with its key and log path while the others go on; :func:`run_rows` returns those failures.

The job's code travels as submitit's pickle of a module-level function and its arguments (written by this
process); rows come back as JSON only.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lftf_interp.configs import Config
from lftf_interp.errors import ConfigError, LftfError
from lftf_interp.store import write_atomic, write_json

EXECUTORS = ("inline", "local", "slurm")


@dataclass
class ExecutorConfig(Config):
    """Where a grid's rows run. ``inline``: one after another in this process. ``local`` / ``slurm``: a
    submitit job per row, at most ``max_jobs`` at once, each with ``cpus`` CPU threads and ``gpus`` GPUs
    (slurm: on ``partition``, ``time_min`` minutes, ``mem_gb``)."""

    kind: str = field(
        default="inline",
        metadata={
            "help": "Where rows run: inline (this process), local (a process per row), slurm (a job per row)."
        },
    )
    max_jobs: int = field(default=4, metadata={"help": "Jobs running at once (local / slurm)."})
    cpus: int = field(default=1, metadata={"help": "CPU threads per job."})
    gpus: int = field(default=0, metadata={"help": "GPUs per job (slurm: --gpus-per-node)."})
    partition: str | None = field(default=None, metadata={"help": "SLURM partition."})
    time_min: int = field(default=240, metadata={"help": "Time limit per job in minutes."})
    mem_gb: int | None = field(
        default=None, metadata={"help": "Memory per job in GB (None: the cluster's default)."}
    )
    poll_s: float = 1.0
    extra: dict = field(default_factory=dict)  # further submitit parameters (e.g. slurm_account)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor {self.kind!r}: choose one of {list(EXECUTORS)}.")
        if self.max_jobs < 1 or self.cpus < 1 or self.gpus < 0 or self.time_min < 1:
            raise ConfigError("max_jobs, cpus and time_min must be >= 1 and gpus >= 0.")
        if self.kind != "inline":
            try:
                import submitit  # noqa: F401
            except ImportError as e:
                raise ConfigError(
                    f"executor {self.kind!r} needs submitit: pip install 'lftf-interp[cluster]'."
                ) from e


@dataclass(frozen=True)
class RowJob:
    """One row: ``fn(**kwargs)`` (a module-level function returning the row as a JSON-able dict)."""

    key: str  # the job's folder name, unique in the grid (e.g. "lora-s1")
    fn: Callable[..., dict]
    kwargs: dict


def _job_main(fn: Callable[..., dict], kwargs: dict, row_path: str, threads: int) -> None:
    """What a job runs: the row, then ``row.json``; on an error, ``error.txt`` with the traceback."""
    import torch

    torch.set_num_threads(threads)
    try:
        row = fn(**kwargs)
    except BaseException:
        write_atomic(Path(row_path).with_name("error.txt"), traceback.format_exc())
        raise
    write_json(row_path, row)


def finished_row(folder: Path) -> dict | None:
    """The row a job wrote into ``folder`` (None if it has not, or the file does not parse)."""
    try:
        return json.loads((folder / "row.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _failure(job, folder: Path) -> str:
    err = folder / "error.txt"
    why = err.read_text().strip().splitlines()[-1] if err.is_file() else f"ended {job.state} without a row"
    return f"row {folder.name} failed: {why} (log: {job.paths.stderr})"


def run_rows(
    jobs: Sequence[RowJob],
    folder: Path,
    cfg: ExecutorConfig,
    on_row: Callable[[dict], None],
    say: Callable[[str], None] = print,
) -> list[str]:
    """Run ``jobs`` as ``cfg`` says; ``on_row(row)`` (the grid's one writer) for each row as it finishes.
    Returns the failures (one line each: the row, the error, the log)."""
    if cfg.kind == "inline":
        for j in jobs:
            on_row(j.fn(**j.kwargs))
        return []
    import submitit

    queue, failures = list(jobs), []
    running: dict[str, tuple] = {}
    while queue or running:
        while queue and len(running) < cfg.max_jobs:
            j = queue.pop(0)
            where = folder / j.key
            if (row := finished_row(where)) is not None:  # finished after an earlier driver stopped
                on_row(row)
                continue
            where.mkdir(parents=True, exist_ok=True)
            (where / "error.txt").unlink(missing_ok=True)
            ex = submitit.AutoExecutor(folder=where, cluster=cfg.kind)
            params: dict = {"timeout_min": cfg.time_min, "cpus_per_task": cfg.cpus, "gpus_per_node": cfg.gpus}
            if cfg.mem_gb:
                params["mem_gb"] = cfg.mem_gb
            if cfg.partition:
                params["slurm_partition"] = cfg.partition
            ex.update_parameters(name=f"lftf-{j.key}", **params, **cfg.extra)
            running[j.key] = (ex.submit(_job_main, j.fn, j.kwargs, str(where / "row.json"), cfg.cpus), where)
            say(f"submitted {j.key} (job {running[j.key][0].job_id}, log {where})")
        time.sleep(cfg.poll_s)
        for key, (job, where) in list(running.items()):
            if not job.done():
                continue
            del running[key]
            if (row := finished_row(where)) is not None:
                on_row(row)
            else:
                failures.append(_failure(job, where))
                say(failures[-1])
    return failures


def raise_failures(failures: Sequence[str], rows_path: Path) -> None:
    """One error listing the failed rows (after the others were recorded in ``rows_path``), if any failed."""
    if failures:
        raise LftfError(
            f"{len(failures)} row(s) failed; the others are in {rows_path}; rerun to retry them:\n"
            + "\n".join(failures)
        )


__all__ = ["EXECUTORS", "ExecutorConfig", "RowJob", "finished_row", "raise_failures", "run_rows"]
