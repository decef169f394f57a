"""patching: our batched sweep vs transformer_lens.patching; bmi: our BMI pass vs a plain HF forward."""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lftf_interp.data import load_dataset
from lftf_interp.locate import compute_bmi, hint_swap_pairs, pair_metric, patch_sweep, tl_patch
from lftf_interp.models import cached_model_dir, load_model

from .common import timeit, write_result


def bench_patching() -> dict:
    model = load_model("smollm2-135m")
    pairs = hint_swap_pairs(model, split="test", hint_kind="noun", n=8, seed=0)
    metric, _, _ = pair_metric(model, pairs)
    ours_s = timeit(lambda: patch_sweep(model, pairs, metric, "resid_pre"), repeat=3)
    no_skip_s = timeit(lambda: patch_sweep(model, pairs, metric, "resid_pre", skip_noops=False), repeat=1, warmup=0)
    t0 = time.perf_counter()
    ref = tl_patch(model, pairs, metric, "resid_pre")
    base_s = time.perf_counter() - t0
    ours = patch_sweep(model, pairs, metric, "resid_pre")
    diff = float((torch.tensor(ours.pivot(index="layer", columns="pos", values="value").values) - ref).abs().max())
    return write_result(
        "patching",
        ours_s,
        "transformer_lens.patching.get_act_patch_resid_pre on the TransformerBridge",
        base_s,
        10.0,
        {
            "sweep": f"resid_pre, {model.cfg.n_layers} blocks x {pairs.n_pos} positions, {len(pairs)} hint-swap pairs",
            "max_abs_diff_vs_tl": diff,
            "ours_without_noop_skipping_s": round(no_skip_s, 3),
            "ratio_without_noop_skipping": round(base_s / no_skip_s, 2),
            "note": "noop skipping: positions where clean == corrupted bit for bit (the shared prefix) are not rerun",
        },
    )


def bench_bmi() -> dict:
    prompts = load_dataset("genbias", "test").prompts
    model = load_model("smollm2-135m")
    where = cached_model_dir("smollm2-135m")
    hf = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(where)
    batches = [prompts[s : s + 64] for s in range(0, len(prompts), 64)]

    @torch.no_grad()
    def baseline():
        for b in batches:
            enc = tok(b, return_tensors="pt", padding=True, add_special_tokens=False)
            hf(**enc)

    ours_s = timeit(lambda: compute_bmi(model, prompts, batch_size=64), repeat=3)
    base_s = timeit(baseline, repeat=3)
    return write_result(
        "bmi",
        ours_s,
        "plain Hugging Face forward over the same prompts (logits only, batches of 64)",
        base_s,
        0.7,
        {"n_prompts": len(prompts), "n_layers": model.cfg.n_layers},
    )
