"""generic_vs_fast: the generic path (the model's own modules, driven through the bridge) against the fast row
on SmolLM2-135M, for the four things a study runs most: evaluate, BMI, a patching sweep and a tune step."""

from __future__ import annotations

import torch

from lftf_interp.data import load_dataset
from lftf_interp.locate import compute_bmi, hint_swap_pairs, pair_metric, patch_sweep
from lftf_interp.metrics.groups import prompt_probs
from lftf_interp.models.generic import GenericRunner, generic_forward
from lftf_interp.models.loading import load_model
from lftf_interp.models.runner import Runner, block_param_names
from lftf_interp.models.tokens import target_ids
from lftf_interp.tune.losses import pronoun_loss
from lftf_interp.tune.scopes import BlockInputCache, freeze_all_but, last_logits_from

from .common import timeit, write_result


def _step(model, block: int, prompts) -> object:
    params = freeze_all_but(model, block_param_names(model, block))
    runner = Runner(model)
    male, female = target_ids(model, [" he"]), target_ids(model, [" she"])
    cache = BlockInputCache(runner, model, prompts, block)
    idx = torch.arange(len(prompts))
    opt = torch.optim.AdamW(list(params.values()), lr=0.0)  # lr 0: time the step, keep the weights

    def step():
        loss = pronoun_loss(last_logits_from(runner, cache, idx), male, female, "balanced")
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def bench_generic_vs_fast() -> dict:
    model = load_model("smollm2-135m")
    prompts = load_dataset("genbias", "test").prompts
    train = load_dataset("genbias", "train").prompts[:32]
    pairs = hint_swap_pairs(model, split="test", hint_kind="noun", n=4, seed=0)
    metric, _, _ = pair_metric(model, pairs)
    block = model.cfg.n_layers - 1
    tasks = {
        "evaluate": lambda: prompt_probs(model, prompts),
        "bmi": lambda: compute_bmi(model, prompts, batch_size=64),
        "patching": lambda: patch_sweep(model, pairs, metric, "resid_pre"),
    }
    fast = {k: timeit(f, repeat=1) for k, f in tasks.items()}
    fast["tune_step"] = timeit(_step(model, block, train), repeat=5)
    with generic_forward(model):
        assert isinstance(Runner(model), GenericRunner)
        generic = {k: timeit(f, repeat=1) for k, f in tasks.items()}
        generic["tune_step"] = timeit(_step(model, block, train), repeat=5)
        p_generic = prompt_probs(model, prompts[:32]).p_he.to_numpy()
    p_fast = prompt_probs(model, prompts[:32]).p_he.to_numpy()
    slowdown = {k: round(generic[k] / fast[k], 2) for k in fast}
    return write_result(
        "generic_vs_fast",
        sum(generic.values()),
        "the fast row (lftf's functional forward) on the same four tasks",
        sum(fast.values()),
        1 / 3,  # the generic path within 3x of the fast one
        {
            "model": "smollm2-135m",
            "fast_s": {k: round(v, 3) for k, v in fast.items()},
            "generic_s": {k: round(v, 3) for k, v in generic.items()},
            "slowdown": slowdown,
            "max_abs_diff_p_he": float(abs(p_generic - p_fast).max()),
            "tasks": f"evaluate: P(he) on {len(prompts)} test prompts; BMI on them; resid_pre patching sweep on "
            f"4 hint-swap pairs ({model.cfg.n_layers} blocks x {pairs.n_pos} positions); one tune step of the "
            "last block on 32 prompts",
        },
    )
