"""Row functions for the executor tests: module-level, so a submitit job imports them (tests/ on PYTHONPATH)."""

import os
import signal
import time
from pathlib import Path


def square(i: int, marks: str) -> dict:
    """Row i = {i, i²}; leaves a file per run in ``marks``. ``kill-<i>`` there: SIGKILLed half-way through;
    ``raise-<i>``: raises."""
    m = Path(marks)
    (m / f"ran-{i}-{time.time_ns()}").touch()
    time.sleep(0.2)
    if (m / f"kill-{i}").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    if (m / f"raise-{i}").exists():
        raise ValueError(f"row {i} cannot be computed")
    return {"i": i, "square": i * i}
