"""patching: our batched sweep vs transformer_lens.patching; bmi: our BMI pass vs a plain HF forward."""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lftf_interp.data import load_dataset
from lftf_interp.locate import PatchOptions, compute_bmi, hint_swap_pairs, pair_metric, patch_sweep, tl_patch
from lftf_interp.models.loading import cached_model_dir, load_model

from .common import timeit, write_result

# Qwen2.5-0.5B's shape (its config.json); random weights: the timing depends on the shape, not on the values
QWEN25_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    vocab_size=151936,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    max_position_embeddings=32768,
    tie_word_embeddings=True,
)


def qwen2_shaped():
    """A random-init Qwen2 with Qwen2.5-0.5B's shape (no Qwen2 checkpoint with a declared licence ships in a
    registry package), on SmolLM2's tokenizer: the patching benchmark's Qwen2 row."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from lftf_interp.models.loading import bridge_from_hf, load_tokenizer

    torch.manual_seed(0)
    cfg = Qwen2Config(**QWEN25_05B, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    cfg.architectures = ["Qwen2ForCausalLM"]
    return bridge_from_hf(
        AutoModelForCausalLM.from_config(cfg).eval(), load_tokenizer("smollm2-135m"), "qwen2.5-0.5b-shape"
    )


def bench_patching(name: str = "patching", model_name: str = "smollm2-135m", n_pairs: int = 8) -> dict:
    model = qwen2_shaped() if model_name == "qwen2.5-0.5b-shape" else load_model(model_name)
    pairs = hint_swap_pairs(model, split="test", hint_kind="noun", n=n_pairs, seed=0)
    metric, _, _ = pair_metric(model, pairs)
    ours_s = timeit(lambda: patch_sweep(model, pairs, metric, "resid_pre"), repeat=3)
    no_skip_s = timeit(
        lambda: patch_sweep(model, pairs, metric, "resid_pre", options=PatchOptions(skip_noops=False)),
        repeat=1,
        warmup=0,
    )
    t0 = time.perf_counter()
    ref = tl_patch(model, pairs, metric, "resid_pre")
    base_s = time.perf_counter() - t0
    ours = patch_sweep(model, pairs, metric, "resid_pre")
    diff = float(
        (torch.tensor(ours.pivot(index="layer", columns="pos", values="value").values) - ref).abs().max()
    )
    return write_result(
        name,
        ours_s,
        "transformer_lens.patching.get_act_patch_resid_pre on the TransformerBridge",
        base_s,
        10.0,
        {
            "model": model_name,
            "architecture": model.original_model.config.model_type,
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
