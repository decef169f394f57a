"""Benchmark plumbing: time both sides in the same run, write benchmarks/results/<name>.json."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def timeit(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_result(
    name: str, ours_s: float, baseline: str, baseline_s: float, target: float, details: dict
) -> dict:
    rec = {
        "benchmark": name,
        "ours_s": round(ours_s, 4),
        "baseline": baseline,
        "baseline_s": round(baseline_s, 4),
        "ratio": round(baseline_s / ours_s, 3),
        "target": target,
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "details": details,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rec, indent=2) + "\n")
    return rec
