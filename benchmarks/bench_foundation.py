"""evaluate: our batched pronoun probabilities vs a plain HF forward; load: cached load vs GGUF dequantisation."""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lftf_interp.data import load_dataset
from lftf_interp.metrics.groups import prompt_probs
from lftf_interp.models.loading import MODEL_REGISTRY, cached_model_dir, gguf_path, load_model

from .common import timeit, write_result

BATCH = 64


def bench_evaluate() -> dict:
    prompts = load_dataset("genbias", "test").prompts + load_dataset("genhint", "test").prompts
    model = load_model("smollm2-135m")
    where = cached_model_dir("smollm2-135m")
    hf = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(where)
    tok.padding_side = "right"
    he, she = tok.encode(" he"), tok.encode(" she")
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    batches = [[prompts[i] for i in order[s : s + BATCH]] for s in range(0, len(order), BATCH)]

    @torch.no_grad()
    def baseline():
        out = []
        for b in batches:
            enc = tok(b, return_tensors="pt", padding=True, add_special_tokens=False)
            logits = hf(**enc).logits
            last = enc["attention_mask"].sum(1) - 1
            p = logits[torch.arange(len(b)), last].softmax(-1)
            out.append(p[:, he + she])
        return torch.cat(out)

    def ours():
        return prompt_probs(model, prompts, batch_size=BATCH)

    torch.set_num_threads(torch.get_num_threads())
    ours_s = timeit(ours, repeat=3)
    base_s = timeit(baseline, repeat=3)
    return write_result(
        "evaluate",
        ours_s,
        "plain Hugging Face forward (sdpa, attention mask, same sorted batches of 64)",
        base_s,
        0.7,
        {"n_prompts": len(prompts), "batch_size": BATCH, "threads": torch.get_num_threads()},
    )


def bench_load() -> dict:
    spec = MODEL_REGISTRY["smollm2-135m"]
    cached_model_dir("smollm2-135m")  # warm cache
    ours_s = timeit(lambda: load_model("smollm2-135m"), repeat=3)
    path = gguf_path(spec)

    def baseline():
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)

    t0 = time.perf_counter()
    baseline()
    base_s = time.perf_counter() - t0
    return write_result(
        "load",
        ours_s,
        "transformers GGUF dequantisation (from_pretrained gguf_file=...)",
        base_s,
        8.0,
        {"ours": "cached safetensors + sha256 validation + TransformerBridge boot", "baseline_repeats": 1},
    )
