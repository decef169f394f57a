"""How far the float32 / bfloat16 checks of the unit tests move with torch's CPU kernels and thread count.

Each quantity below is what a numeric test bounds, computed exactly as the test computes it. The parent runs one
child per (``ATEN_CPU_CAPABILITY``, ``MKL_CBWR``, threads): torch's own kernels ``default``, ``avx2`` and, where
the CPU has it, ``avx512``; MKL's matrix products as this CPU picks them, or forced to its ``AVX2`` or
``COMPATIBLE`` code paths (what another vendor's CPU gets: MKL takes other paths on AMD); one and two threads.
It writes the worst value of each quantity and the bound the test sets on it:

    python scripts/spread.py --out results/portable/spread.json

A bound holds on every kernel set measured when it sits above the worst value; the margin is bound / worst.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BF16_FAMILIES = ("gemma3", "mistral", "qwen3", "gpt2", "gpt-neox", "phi3", "gemma2", "olmo2")
PATCHING = "tests/locate/test_patching.py::"
BF16 = "tests/models/test_archs.py::test_bfloat16_runner_follows_hugging_face"
# quantity -> (the test that bounds it, its bound; every quantity must stay below its bound)
BOUNDS = {
    "patching.noop_prefix_abs": (PATCHING + "test_skipping_noops_changes_nothing", 5e-5),
    "patching.skip_vs_full_abs": (PATCHING + "test_skipping_noops_changes_nothing", 2e-4),
    "patching.unembed_groups_rel": (PATCHING + "test_unembedding_in_groups_gives_each_runs_value", 2e-5),
    "bmi.batch_abs": ("tests/locate/test_bmi.py::test_batching_does_not_change_bmi", 1e-6),
    "bf16.max_rel_logit_diff": (BF16, 0.1),
    "bf16.max_rel_argmax_gap": (BF16, 0.02),
}


def measure() -> dict[str, float]:
    """The quantities, in this process (its kernels and thread count)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from helpers import tiny
    from models.test_archs import PROMPTS, make

    from lftf_interp.locate import hint_swap_pairs, pair_metric
    from lftf_interp.locate.patching import PatchOptions, _unembed_values, patch_resid_pre
    from lftf_interp.models.loading import plain_copy
    from lftf_interp.models.runner import Runner
    from lftf_interp.models.tokens import encode_batch

    out: dict[str, float] = {}
    tiny3 = tiny(3, seed=1)
    pairs = hint_swap_pairs(tiny3, split="test", n=3)
    metric, _, _ = pair_metric(tiny3, pairs)
    a = patch_resid_pre(tiny3, pairs, metric)
    b = patch_resid_pre(tiny3, pairs, metric, options=PatchOptions(skip_noops=False, batch_size=1))
    out["patching.noop_prefix_abs"] = float(a[a.pos < 3].value.abs().max())
    out["patching.skip_vs_full_abs"] = float((a.value - b.value).abs().max())
    runner = Runner(tiny3)
    torch.manual_seed(0)
    finals = [torch.randn(len(pairs), tiny3.cfg.d_model) for _ in range(4)]
    one_by_one = [float(metric(runner.unembed(f)[:, None])) for f in finals]
    worst = 0.0
    for max_rows in (1, 6, 9):
        got = _unembed_values(runner, metric, finals, max_rows=max_rows)
        worst = max(worst, max(abs(g - w) / abs(w) for g, w in zip(got, one_by_one, strict=True)))
    out["patching.unembed_groups_rel"] = worst
    from locate.test_bmi import PROMPTS as BMI_PROMPTS

    from lftf_interp.locate.bmi import compute_bmi

    tiny2 = tiny(2, seed=0)
    one, three = compute_bmi(tiny2, BMI_PROMPTS, batch_size=1), compute_bmi(tiny2, BMI_PROMPTS, batch_size=3)
    out["bmi.batch_abs"] = float((one.bmi - three.bmi).abs().max())
    rel, gap = 0.0, 0.0
    for name in BF16_FAMILIES:
        m = make(name)
        ids, _ = encode_batch(m, PROMPTS[:1])
        plain = plain_copy(m).to(torch.bfloat16)
        m.original_model.to(torch.bfloat16)
        with torch.no_grad():
            ours, ref = Runner(m).logits(ids).float(), plain(input_ids=ids).logits.float()
        top = ref.abs().max()
        rel = max(rel, float((ours - ref).abs().max() / top))
        picked = ref.gather(-1, ours.argmax(-1, keepdim=True)).squeeze(-1)
        gap = max(gap, float((ref.max(-1).values - picked).max() / top))
    out["bf16.max_rel_logit_diff"], out["bf16.max_rel_argmax_gap"] = rel, gap
    return out


MKL_PATHS = ("native", "AVX2", "COMPATIBLE")


def machine() -> dict:
    """Where the spread was measured: CPU model and flags that choose kernels, torch version, date."""
    import datetime

    import torch

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((x.split(":", 1)[1].strip() for x in info.splitlines() if x.startswith("model name")), "")
    flags = next((x.split(":", 1)[1].split() for x in info.splitlines() if x.startswith("flags")), [])
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "fma", "amx"))),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
    }


def kernel_sets() -> list[str]:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return ["default", "avx2"] + (["avx512"] if "avx512f" in flags else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "portable" / "spread.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    runs = []
    for cap in kernel_sets():
        for mkl in MKL_PATHS:
            for threads in (1, 2):
                env = dict(os.environ, ATEN_CPU_CAPABILITY=cap, OMP_NUM_THREADS=str(threads))
                env.pop("MKL_CBWR", None)
                env.update({"MKL_CBWR": mkl} if mkl != "native" else {})
                done = subprocess.run(
                    [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True
                )
                got = json.loads(done.stdout.splitlines()[-1])
                runs.append({"capability": cap, "mkl": mkl, "threads": threads, **got})
                print(runs[-1], flush=True)
    table = {}
    for q, (test, bound) in BOUNDS.items():
        worst = max(r[q] for r in runs)
        table[q] = {"test": test, "worst": worst, "bound": bound, "margin": bound / worst if worst else None}
    record = {**machine(), "runs": runs, "worst": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for q, row in table.items():
        margin = f"{row['margin']:.0f}x" if row["margin"] else "exact"
        print(
            f"{q:30s} worst {row['worst']:9.3g}  bound {row['bound']:7.0e}  margin {margin:>6s}  {row['test']}"
        )


if __name__ == "__main__":
    main()
