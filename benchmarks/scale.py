"""`make scale`: what LFTF costs at the paper's sizes, without downloading any weights.

Random-init models with the real shapes of Llama-3-8B and Qwen2.5-7B (numbers from their config.json files)
are built at depths that fit this machine (CPU: 1 and 2 blocks of full width and full vocabulary; on a GPU the
full depth). Each measurement runs in its own process so its peak memory is its own:

* ``bmi``: one BMI pass (every block, last position) over a batch of prompts -> tokens/s;
* ``patching``: a resid_pre patching sweep over hint-swap pairs (every block x position);
* ``block``: one LFTF step (the last block's attention + MLP, from its cached input, AdamW);
* ``full``: one full fine-tuning step (every parameter, AdamW), where its memory fits;
* ``blocks``: the same with the embeddings frozen (every block trains): FPFT's part that grows with depth;
* ``lora``: one LoRA step (r = 8 on every projection, peft) for reference.

Time is linear in depth for ``bmi``, ``blocks``, ``full`` and ``lora`` (a + b * depth, fitted on the two depths
measured), grows as depth (depth + 1) / 2 for ``patching`` (each patched block reruns the blocks after it) and is
constant for ``block`` (one block runs, whatever the depth); memory of weights, gradients and
AdamW states is counted from the parameter numbers. Results: benchmarks/results/scale_<shape>.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import torch

from .common import RESULTS

SHAPES = {  # from each model's config.json
    "llama3-8b": dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    ),
    "qwen2.5-7b": dict(
        model_type="qwen2",
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
    ),
}
KINDS = ("bmi", "patching", "block", "blocks", "full", "lora")
BATCH, SEQ = 8, 16  # a training batch of prompts as long as ours


def build(shape: str, depth: int, dtype: torch.dtype, device: str, bridge: bool = True):
    from transformers import AutoConfig, AutoModelForCausalLM

    from lftf_interp.models.archs import ARCHS
    from lftf_interp.models.loading import bridge_from_hf, load_tokenizer

    kw = dict(SHAPES[shape])
    cfg = AutoConfig.for_model(
        kw.pop("model_type"),
        **{**kw, "num_hidden_layers": depth},
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    cfg.architectures = [ARCHS[cfg.model_type].hf_class]
    torch.manual_seed(0)
    with torch.device(device):
        hf = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    if not bridge:  # peft wraps plain Hugging Face modules only
        return hf
    return bridge_from_hf(hf, load_tokenizer("smollm2-135m"), f"{shape}-shape-{depth}l")


def _loss(logits: torch.Tensor) -> torch.Tensor:
    lp = logits.float().log_softmax(-1)
    return (lp[:, 0] - lp[:, 1]).pow(2).mean()  # a pronoun-gap loss on two token ids, as LFTF's


def measure(shape: str, depth: int, kind: str, device: str) -> dict:
    """One measurement in this process: seconds per call (the faster of 2 after a warm-up) and peak memory."""
    from lftf_interp.locate import hint_swap_pairs, pair_metric, patch_sweep
    from lftf_interp.models.runner import Runner, block_param_names, canonical_state_dict

    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    model = build(shape, depth, dtype, device, bridge=kind != "lora")
    runner = Runner(model)
    ids = torch.randint(100, 40000, (BATCH, SEQ), generator=torch.Generator().manual_seed(0)).to(device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    if kind == "bmi":

        def step():
            with torch.no_grad():
                for _layer, _pre, _post in runner.walk(runner.embed(ids)):
                    pass
    elif kind == "patching":
        pairs = hint_swap_pairs(model, split="test", n=2, seed=0)
        metric, _, _ = pair_metric(model, pairs)

        def step():
            patch_sweep(model, pairs, metric, "resid_pre")
    else:
        params = canonical_state_dict(model)
        for p in params.values():
            p.requires_grad_(False)
        if kind == "block":
            names = block_param_names(model, depth - 1)
            train = [params[n].requires_grad_(True) for n in names]
            with torch.no_grad():
                x = runner.run(
                    runner.embed(ids), stop=depth - 1
                )  # cached once, as LFTF's BlockInputCache does

            def fwd():
                return runner.unembed(runner.run(x, start=depth - 1)[:, -1])
        elif kind in ("full", "blocks"):
            pre = "model.layers."
            train = list(
                {
                    id(p): p.requires_grad_(True)
                    for n, p in params.items()
                    if kind == "full" or n.startswith(pre)
                }.values()
            )

            def fwd():
                return runner.unembed(runner.run(runner.embed(ids))[:, -1])
        else:
            from peft import LoraConfig, get_peft_model

            from lftf_interp.tune.scopes import lora_targets

            peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=lora_targets(model)))
            train = [p for p in peft.parameters() if p.requires_grad]

            def fwd():
                return peft(input_ids=ids).logits[:, -1]

        opt = torch.optim.AdamW(train, lr=1e-5)

        def step():
            opt.zero_grad(set_to_none=True)
            _loss(fwd()[:, [1000, 2000]]).backward()
            opt.step()

    step()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        step()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out = {
        "shape": shape,
        "depth": depth,
        "kind": kind,
        "device": device,
        "dtype": str(dtype).split(".")[1],
        "seconds": min(times),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "rss_before_gib": rss0,
        "tokens": BATCH * SEQ,
    }
    if device != "cpu":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def counts(shape: str) -> dict:
    """Parameter numbers of the full-depth model: all, one block, embeddings."""
    s = SHAPES[shape]
    d, f, h, kv = s["hidden_size"], s["intermediate_size"], s["num_attention_heads"], s["num_key_value_heads"]
    dh = d // h
    attn = (
        d * h * dh
        + 2 * d * kv * dh
        + h * dh * d
        + (h * dh + 2 * kv * dh if s["model_type"] == "qwen2" else 0)
    )
    block = attn + 3 * d * f + 2 * d
    emb = s["vocab_size"] * d * (1 if s["tie_word_embeddings"] else 2)
    return {"block": block, "embeddings": emb, "all": emb + s["num_hidden_layers"] * block + d}


def project(shape: str, rows: list[dict]) -> dict:
    """Full-depth projections: time linear in depth (fit on the depths measured), memory from parameter counts."""
    L, n = SHAPES[shape]["num_hidden_layers"], counts(shape)
    out = {"params": n}
    for kind in KINDS:
        pts = sorted((r["depth"], r["seconds"]) for r in rows if r["kind"] == kind)
        if len(pts) >= 2 and kind != "block":
            (d1, t1), (d2, t2) = pts[0], pts[-1]
            # a patching sweep patches each of d blocks and reruns the blocks after it: work ~ d (d + 1) / 2
            f = (lambda d: d * (d + 1) / 2) if kind == "patching" else (lambda d: d)
            b = (t2 - t1) / (f(d2) - f(d1))
            out[f"{kind}_s_full_depth"] = t1 + b * (f(L) - f(d1))
        elif pts:
            out[f"{kind}_s_full_depth"] = pts[-1][1]
    gib = 2**30
    # AdamW in float32: weights 4 B + gradient 4 B + two moments 8 B per trained parameter
    out["full_train_state_gib_fp32"] = n["all"] * 16 / gib
    out["block_train_state_gib_fp32"] = (n["all"] * 4 + n["block"] * 12) / gib
    out["weights_gib_bf16"] = n["all"] * 2 / gib
    out["full_train_state_gib_bf16_weights"] = (
        n["all"] * (2 + 2 + 8) / gib
    )  # bf16 weights + grads, fp32 moments
    out["block_train_state_gib_bf16_weights"] = (n["all"] * 2 + n["block"] * 10) / gib
    return out


def needs_gib(shape: str, depth: int, kind: str) -> float:
    n = counts(shape)
    total = n["embeddings"] + depth * n["block"]
    trained = {"full": total, "blocks": depth * n["block"], "block": n["block"]}.get(kind, 0)
    return (total * 4 + trained * 12) / 2**30


def available_gib() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def main(kinds: tuple[str, ...] = KINDS) -> None:
    """Measure ``kinds`` for every shape and depth; rows of other kinds already on disk are kept."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    depths = [1, 2] if device == "cpu" else [2, None]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for shape in SHAPES:
        old = RESULTS / f"scale_{shape}.json"
        keep = json.loads(old.read_text())["rows"] if old.is_file() else []
        rows = [r for r in keep if r["kind"] not in kinds and r.get("device", device) == device]
        for depth in depths:
            depth = depth or SHAPES[shape]["num_hidden_layers"]
            for kind in kinds:
                if device == "cpu" and (need := needs_gib(shape, depth, kind)) > 0.8 * (
                    free := available_gib()
                ):
                    rows.append(
                        {
                            "shape": shape,
                            "depth": depth,
                            "kind": kind,
                            "error": f"skipped: needs ~{need:.1f} GiB, {free:.1f} GiB free",
                        }
                    )
                    continue
                proc = subprocess.run(
                    [sys.executable, "-m", "benchmarks.scale", shape, str(depth), kind, device],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode != 0:  # e.g. out of memory: recorded, not hidden
                    rows.append({"shape": shape, "depth": depth, "kind": kind, "error": proc.stderr[-400:]})
                    continue
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
                write(shape, device, rows)  # after every row: an interrupted run keeps what it measured


def write(shape: str, device: str, rows: list[dict]) -> None:
    ok = [r for r in rows if "error" not in r]
    rec = {
        "benchmark": f"scale_{shape}",
        "shape": SHAPES[shape],
        "device": device,
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "batch": BATCH,
        "seq": SEQ,
        "rows": rows,
        "projection": project(shape, ok),
        "gpu_run": device != "cpu" or "no GPU was available to this run; CPU depths only",
    }
    (RESULTS / f"scale_{shape}.json").write_text(json.dumps(rec, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 5:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
    else:  # `python -m benchmarks.scale [kind ...]`
        main(tuple(sys.argv[1:]) or KINDS)
