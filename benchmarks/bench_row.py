"""``compare_row``: the wall time of one LFTF compare row with every probe, beside its floor measured in the same
run — the row's own training steps (forward, backward, optimizer; timed inside the row) plus one full forward
per token the probes, bias scores and retention feed the model (the token count is taken inside the row, the
per-token time of a full forward on a batch like theirs is timed beside it). ratio = floor / wall: the row's
efficiency. Two rows run: seed 0 with an empty prefix store (cold), then seed 1 reusing it (warm); the seed-0
row is also checked against the committed row of results/validity/compare."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from lftf_interp.experiments.compare import CompareConfig, default_methods, retain_config, run_method
from lftf_interp.models.loading import load_model
from lftf_interp.models.prefix import clear_prefixes, persist_prefixes
from lftf_interp.models.runner import Runner
from lftf_interp.probes import COMPARE_VALIDITY
from lftf_interp.retain import compute_reference
from lftf_interp.tune import train

from .common import timeit, write_result

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "validity" / "compare" / "rows.jsonl"


class Meter:
    """Seconds spent in training steps and tokens fed to forwards, while installed."""

    def __init__(self):
        self.step_s, self.tokens = 0.0, 0

    def __enter__(self):
        self.saved = (train.Objective.__call__, torch.Tensor.backward, torch.optim.AdamW.step, Runner.enter)
        obj, bwd, opt, enter = self.saved
        meter = self

        def timed(fn):
            def run(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    meter.step_s += time.perf_counter() - t0

            return run

        def counted(runner, tokens, lengths=None):
            meter.tokens += int(lengths.sum()) if lengths is not None else tokens.numel()
            return enter(runner, tokens, lengths)

        train.Objective.__call__ = timed(obj)
        torch.Tensor.backward = timed(bwd)
        torch.optim.AdamW.step = timed(opt)
        Runner.enter = counted
        return self

    def __exit__(self, *exc):
        train.Objective.__call__, torch.Tensor.backward, torch.optim.AdamW.step, Runner.enter = self.saved


def per_token_s(model) -> float:
    """Seconds per token of a full no-grad forward (all blocks, last-position unembedding), 16 × 64 tokens."""
    runner = Runner(model)
    ids = torch.randint(0, model.cfg.d_vocab, (16, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return timeit(lambda: runner.last_logits(ids), repeat=3) / ids.numel()


def bench_compare_row(model_name: str = "smollm2-135m", method: str = "lftf-balanced") -> dict:
    cfg = CompareConfig(model=model_name, validity=COMPARE_VALIDITY, retain=retain_config("small"))
    model = load_model(model_name)
    t_tok = per_token_s(model)
    ref = compute_reference(model, cfg.retain)
    spec = next(s for s in default_methods(model.cfg.n_layers) if s.name == method)
    rows, runs = {}, []
    clear_prefixes()
    with tempfile.TemporaryDirectory() as tmp, persist_prefixes(tmp):
        for seed in (0, 1):
            with Meter() as m:
                t0 = time.perf_counter()
                row, _ = run_method(spec, lambda: load_model(model_name), ref, cfg, seed)
                wall = time.perf_counter() - t0
            floor = m.step_s + m.tokens * t_tok
            rows[seed] = row
            runs.append(
                {
                    "seed": seed,
                    "wall_s": round(wall, 1),
                    "train_s": round(row["train_s"], 1),
                    "steps_s": round(m.step_s, 1),
                    "forward_tokens": m.tokens,
                    "floor_s": round(floor, 1),
                    "efficiency": round(floor / wall, 3),
                }
            )
    committed = next(
        (
            r
            for r in map(json.loads, COMMITTED.read_text().splitlines())
            if r["method"] == method and r["seed"] == 0
        ),
        None,
    )
    diffs = {}
    if committed:
        for k, v in rows[0].items():
            if isinstance(v, float) and isinstance(committed.get(k), float) and not k.endswith("_s"):
                diffs[k] = abs(v - committed[k])
    cold, warm = runs
    return write_result(
        "compare_row",
        cold["wall_s"],
        "floor: the row's own training steps + one full forward per token it feeds the model",
        cold["floor_s"],
        0.5,
        {
            "model": model_name,
            "method": method,
            "per_token_forward_s": t_tok,
            "rows": runs,
            "warm_ratio": round(warm["floor_s"] / warm["wall_s"], 3),
            "vs_committed_seed0": {
                "n_values": len(diffs),
                "max_abs_diff": max(diffs.values(), default=None),
                "worst": max(diffs, key=diffs.get) if diffs else None,
            },
        },
    )
