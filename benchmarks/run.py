"""`make bench`: run every benchmark and write benchmarks/results/<name>.json."""

from __future__ import annotations

import functools
import json
import sys

from . import bench_axis, bench_foundation, bench_generic, bench_locate, bench_pairs, bench_row, bench_tune

BENCHMARKS = {
    "evaluate": bench_foundation.bench_evaluate,
    "load": bench_foundation.bench_load,
    "patching": bench_locate.bench_patching,  # Llama (SmolLM2-135M)
    "patching_gemma3": functools.partial(bench_locate.bench_patching, "patching_gemma3", "gemma3-270m", 4),
    **{
        f"patching_{family}": functools.partial(bench_locate.bench_patching, f"patching_{family}", shape, 4)
        for family, shape in (
            ("qwen2", "qwen2.5-0.5b-shape"),
            ("gpt2", "gpt2-shape"),
            ("gpt_neox", "pythia-160m-shape"),
            ("qwen3", "qwen3-0.6b-shape"),
            ("olmo2", "olmo2-1b-shape-4-blocks"),
            ("gemma2", "gemma2-2b-shape-4-blocks"),
            ("phi3", "phi3-mini-shape-4-blocks"),
            ("mistral", "mistral-7b-shape-4-blocks"),
        )
    },
    "bmi": bench_locate.bench_bmi,
    "tune_step": bench_tune.bench_tune_step,
    "multitoken": bench_axis.bench_multitoken,
    "axis_load": bench_axis.bench_axis_load,
    "shared_context": bench_pairs.bench_shared_context,
    "generic_vs_fast": bench_generic.bench_generic_vs_fast,
    "compare_row": bench_row.bench_compare_row,  # ~15 min on 2 cores
}


def main(names: list[str]) -> None:
    for name in names or list(BENCHMARKS):
        rec = BENCHMARKS[name]()
        print(
            json.dumps({k: rec[k] for k in ("benchmark", "ours_s", "baseline_s", "ratio", "target")}),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
