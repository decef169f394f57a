"""patching: our batched sweep vs transformer_lens.patching; bmi: our BMI pass vs a plain HF forward."""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lftf_interp.data import load_dataset
from lftf_interp.locate import PatchOptions, compute_bmi, hint_swap_pairs, pair_metric, patch_sweep, tl_patch
from lftf_interp.models.loading import cached_model_dir, load_model

from .common import timeit, write_result

# Real models' shapes (from their config.json), random weights: the timing depends on the shape, not on the
# values. name -> (model_type, config fields). The largest keep 4 of their blocks (the block shapes are the real
# ones; a full-depth transformer_lens sweep would take hours on 2 cores); see shaped() for the vocabulary.
SHAPES: dict[str, tuple[str, dict]] = {
    "qwen2.5-0.5b-shape": (
        "qwen2",
        dict(
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            vocab_size=151936,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        ),
    ),
    "gpt2-shape": ("gpt2", dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)),
    "pythia-160m-shape": (
        "gpt_neox",
        dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            vocab_size=50304,
            rotary_pct=0.25,
            use_parallel_residual=True,
            tie_word_embeddings=False,
        ),
    ),
    "qwen3-0.6b-shape": (
        "qwen3",
        dict(
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            vocab_size=151936,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        ),
    ),
    "olmo2-1b-shape-4-blocks": (
        "olmo2",
        dict(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=4,
            num_attention_heads=16,
            num_key_value_heads=16,
            vocab_size=100352,
            rope_theta=500000.0,
            rms_norm_eps=1e-6,
        ),
    ),
    "gemma2-2b-shape-4-blocks": (
        "gemma2",
        dict(
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            vocab_size=256000,
            query_pre_attn_scalar=256,
            sliding_window=4096,
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
        ),
    ),
    "phi3-mini-shape-4-blocks": (
        "phi3",
        dict(
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=4,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32064,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        ),
    ),
    "mistral-7b-shape-4-blocks": (
        "mistral",
        dict(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=4,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=32768,
            rope_theta=1000000.0,
            rms_norm_eps=1e-5,
            sliding_window=None,
            tie_word_embeddings=False,
        ),
    ),
}


def shaped(name: str):
    """A random-init model of one of :data:`SHAPES` (no checkpoint with a declared licence ships in a registry
    package), on SmolLM2's tokenizer."""
    from transformers import AutoConfig

    from lftf_interp.models.archs import ARCHS
    from lftf_interp.models.loading import bridge_from_hf, load_tokenizer

    model_type, fields = SHAPES[name]
    tok = load_tokenizer("smollm2-135m")
    # SmolLM2's token ids reach 49,151: a smaller vocabulary (Phi-3 32,064, Mistral 32,768) is raised to it
    fields = {**fields, "vocab_size": max(fields["vocab_size"], len(tok))}
    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, **fields, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    cfg.architectures = [ARCHS[model_type].hf_class]
    eager = {"attn_implementation": "eager"} if model_type == "gemma2" else {}  # soft-capped attention scores
    hf = AutoModelForCausalLM.from_config(cfg, **eager).eval()
    return bridge_from_hf(hf, tok, name)


def bench_patching(name: str = "patching", model_name: str = "smollm2-135m", n_pairs: int = 8) -> dict:
    model = shaped(model_name) if model_name in SHAPES else load_model(model_name)
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
