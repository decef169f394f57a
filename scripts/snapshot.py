"""A fingerprint of every stage on the real model (SmolLM2-135M, CPU, float32): evaluate, BMI, block choice,
activation patching, logit lens, attribution, a short fine-tune's history and delta, a retention probe, one
non-gender axis and one validity probe. Two runs of the same code give the same JSON; a change of structure
that keeps behaviour must too.

    python scripts/snapshot.py OUT.json      (~3 min on 2 cores)
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pandas as pd
import torch

from lftf_interp.data import load_axis
from lftf_interp.locate import attribution_patch, choose_blocks, hint_swap_pairs
from lftf_interp.locate.run import LocateConfig, locate
from lftf_interp.metrics.groups import EvalConfig, evaluate, evaluate_axis
from lftf_interp.models.loading import load_model
from lftf_interp.probes.beyond import gendered_knowledge
from lftf_interp.retain import RetainConfig, compute_reference, compute_retention
from lftf_interp.tune import TuneConfig, tune


def digest(x) -> str:
    """sha256 of a frame / array / tensor / dict's exact values."""
    h = hashlib.sha256()
    if isinstance(x, pd.DataFrame):
        x = x.reset_index(drop=True)
        h.update(",".join(map(str, x.columns)).encode())
        for c in x.columns:
            v = x[c].to_numpy()
            h.update(
                v.astype("float64").tobytes() if v.dtype.kind in "fiub" else "\x1f".join(map(str, v)).encode()
            )
    elif isinstance(x, torch.Tensor):
        h.update(x.detach().to(torch.float64).numpy().tobytes())
    elif isinstance(x, np.ndarray):
        h.update(x.astype("float64").tobytes())
    else:
        h.update(json.dumps(x, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def main(out: str) -> None:
    torch.manual_seed(0)
    model = load_model("smollm2-135m")
    snap: dict = {}
    ev, bias_df, hint_df = evaluate(model, EvalConfig(batch_size=64, n_boot=200))
    snap["evaluate"] = {
        "metrics": digest(ev),
        "bias": digest(bias_df),
        "hint": digest(hint_df),
        "afgb": ev["afgb"],
    }
    loc = locate(model, LocateConfig(n_bmi=60, n_pairs=4, n_lens=20))
    snap["locate"] = {k: digest(v) for k, v in sorted(loc.items())}
    snap["choose"] = choose_blocks(model, top_k=2)
    pairs = hint_swap_pairs(model, n=4, seed=0)
    snap["attribution"] = digest(attribution_patch(model, pairs))
    ref = compute_reference(model, RetainConfig.small())
    res = tune(
        model,
        TuneConfig(
            block=24, lr=1e-4, steps=6, eval_every=3, n_val=40, n_train=64, hint_weight=0.5, mass_weight=1.0
        ),
    )
    snap["tune"] = {
        "history": digest(
            res.history.drop(columns=[c for c in res.history if "time" in c or c.endswith("_s")])
        ),
        "best_val": digest(res.best_val),
        "block24": digest(torch.cat([p.flatten() for p in model.blocks[24].parameters()])),
    }
    snap["retain"] = digest({k: v for k, v in compute_retention(model, ref).items() if "time" not in k})
    axis = load_axis("religion")
    m, b, h = evaluate_axis(model, axis, n_boot=200)
    snap["axis_religion"] = {"metrics": digest(m), "bias": digest(b)}
    g, gdf = gendered_knowledge(model, n_boot=200)
    snap["probe_gendered"] = {"metrics": digest(g), "rows": digest(gdf)}
    with open(out, "w") as f:
        json.dump(snap, f, indent=1, sort_keys=True, default=str)
    print(json.dumps(snap, indent=1, sort_keys=True, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
