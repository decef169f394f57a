"""The GPU check: evaluate, locate (BMI + a patching sweep), a 40-step LFTF and the validity probes on a device
and dtype, each against the same stage in float32 on the CPU within a stated tolerance; then (``--scale``) the
paper-size timings of ``benchmarks.scale``. One JSON out.

    python scripts/gpu_check.py --device cuda --dtype bfloat16 --out results/gpu_check/h200.json
    python scripts/gpu_check.py --device cpu --tiny --out out/gpu_check.json   # the test's run: tiny models

The CPU float32 side runs in the same script on the same prompts (sizes below), so the comparison needs no
other file. Tolerances are for bfloat16 (8 mantissa bits): a probability differs by ~1e-2 relative.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lftf_interp.data import load_dataset
from lftf_interp.locate import compute_bmi
from lftf_interp.locate.pairs import hint_swap_pairs, logit_diff
from lftf_interp.locate.patching import PatchOptions, patch_sweep
from lftf_interp.metrics.groups import EvalConfig, evaluate
from lftf_interp.models.loading import export_hf, load_model, tiny_model
from lftf_interp.models.placement import Placement
from lftf_interp.probes import ValidityConfig, validity_report
from lftf_interp.provenance import run_meta
from lftf_interp.store import write_json
from lftf_interp.tune import TuneConfig, tune

TOL = {"afgb": 0.02, "ub": 0.02, "bmi": 0.02, "patching": 0.05, "tuned_afgb": 0.05, "probe": 0.05}
PROBES = ("gendered", "winobias", "math", "hints", "paperstyle", "long_context")


def stages(
    name: str, where: Placement, block: int, steps: int, n: int, probes: tuple[str, ...] = PROBES
) -> dict:
    """Every stage's numbers on one placement (the check runs it twice: CPU float32 and the device)."""
    out, t = {}, {}
    model = load_model(name, where)
    bias, hint = (load_dataset(k, "test") for k in ("genbias", "genhint"))
    bias.df, hint.df = bias.df.head(n), hint.df.head(n)
    data = pd.concat([bias.df, hint.df], ignore_index=True)  # rows with a label are hint prompts
    t0 = time.perf_counter()
    m, _, _ = evaluate(model, EvalConfig(n_boot=20), data)
    out |= {"afgb": m["afgb"], "ub": m["ub"]}
    t["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["bmi"] = compute_bmi(model, bias.prompts[:n]).bmi.tolist()
    t["bmi"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    he, she = (model.tokenizer.encode(w, add_special_tokens=False)[0] for w in (" he", " she"))
    pairs = hint_swap_pairs(model, n=8, seed=0)
    sweep = patch_sweep(model, pairs, logit_diff(he, she), per_position=False, options=PatchOptions())
    out["patching"] = sweep["value"].tolist()
    t["patching"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if not os.environ.get("LFTF_EXTERNAL"):  # WinoBias is read from the external data folder
        probes = tuple(p for p in probes if p != "winobias")
    vcfg = ValidityConfig(
        probes=probes, math_n=n, context_lengths=(0, 256), context_n=max(2, n // 8), n_boot=20
    )
    flat, _ = validity_report(model, vcfg)
    out["probes"] = {k: v for k, v in flat.items() if isinstance(v, float)}
    t["probes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tune(model, TuneConfig(block=block, steps=steps, n_val=n, eval_every=10, mass_weight=0.0))
    m, _, _ = evaluate(model, EvalConfig(n_boot=20), data)
    out["tuned_afgb"] = m["afgb"]
    t["tune"] = time.perf_counter() - t0
    return {"values": out, "seconds": t}


def compare(cpu: dict, dev: dict) -> dict:
    """Per stage: the largest absolute difference, its tolerance and whether it holds."""
    a, b = cpu["values"], dev["values"]
    diff = {
        "afgb": abs(a["afgb"] - b["afgb"]),
        "ub": abs(a["ub"] - b["ub"]),
        "bmi": float(np.max(np.abs(np.subtract(a["bmi"], b["bmi"])))),
        "patching": float(  # relative to the largest patching effect (logit-difference units vary by model)
            np.max(np.abs(np.subtract(a["patching"], b["patching"])))
            / max(np.max(np.abs(a["patching"])), 1e-6)
        ),
        "tuned_afgb": abs(a["tuned_afgb"] - b["tuned_afgb"]),
        "probe": max(abs(a["probes"][k] - b["probes"][k]) for k in a["probes"] if k in b["probes"]),
    }
    return {k: {"max_abs_diff": v, "tolerance": TOL[k], "ok": bool(v <= TOL[k])} for k, v in diff.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--tiny", action="store_true", help="tiny random models instead (the CPU test)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--n", type=int, default=64, help="prompts per set")
    ap.add_argument("--probes", default=",".join(PROBES), help="comma-separated validity probes")
    ap.add_argument("--scale", action="store_true", help="also benchmarks.scale on the device")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    models: list[tuple[str, int]] = []
    tmp = tempfile.mkdtemp(prefix="gpu-check-")
    if args.tiny:
        models = [(str(export_hf(tiny_model(3, seed=1), Path(tmp) / "tiny")), 2)]
    else:
        blocks = {"smollm2-135m": 24, "gemma3-270m": 15}
        models = [(m, blocks.get(m, 1)) for m in args.models.split(",")]
    report: dict = {"device": args.device, "dtype": args.dtype, "tolerances": TOL, "models": {}}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
    for name, block in models:
        probes = tuple(args.probes.split(","))
        cpu = stages(name, Placement("cpu", "float32"), block, args.steps, args.n, probes)
        dev = stages(name, Placement(args.device, args.dtype), block, args.steps, args.n, probes)
        report["models"][Path(name).name] = {
            "block": block,
            "cpu_float32": cpu,
            "device": dev,
            "check": compare(cpu, dev),
        }
        if args.device.startswith("cuda"):
            report["models"][Path(name).name]["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if args.scale:
        done = subprocess.run([sys.executable, "-m", "benchmarks.scale"], capture_output=True, text=True)
        report["scale"] = {"returncode": done.returncode, "tail": done.stdout[-4000:] + done.stderr[-2000:]}
    report["ok"] = all(c["ok"] for m in report["models"].values() for c in m["check"].values())
    write_json(args.out, {**report, **run_meta()})
    print(json.dumps({m: {k: c["ok"] for k, c in v["check"].items()} for m, v in report["models"].items()}))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
