"""tune_step: one LFTF step on the last block from the cached block input vs a naive full-model step."""

from __future__ import annotations

import resource

import torch

from lftf_interp.data import load_dataset
from lftf_interp.models.loading import load_model
from lftf_interp.models.runner import Runner, block_param_names
from lftf_interp.models.tokens import encode_batch, target_ids
from lftf_interp.tune.losses import pronoun_loss
from lftf_interp.tune.scopes import BlockInputCache, freeze_all_but, last_logits_from

from .common import timeit, write_result


def bench_tune_step() -> dict:
    model = load_model("smollm2-135m")
    block = model.cfg.n_layers - 1
    params = freeze_all_but(model, block_param_names(model, block))
    runner = Runner(model)
    prompts = load_dataset("genbias", "train").prompts[:32]
    male, female = target_ids(model, [" he"]), target_ids(model, [" she"])
    cache = BlockInputCache(runner, model, prompts, block)
    idx = torch.arange(32)
    opt = torch.optim.AdamW(list(params.values()), lr=0.0)  # lr 0: time the step, keep the weights
    ids, lengths = encode_batch(model, prompts)

    def ours():
        loss = pronoun_loss(last_logits_from(runner, cache, idx), male, female, "balanced")
        opt.zero_grad()
        loss.backward()
        opt.step()

    def naive():  # the plain way: full HF forward through the bridge's model, all positions unembedded
        logits = model.original_model(ids).logits[torch.arange(32), lengths - 1]
        loss = pronoun_loss(logits, male, female, "balanced")
        opt.zero_grad()
        loss.backward()
        opt.step()

    ours_s = timeit(ours, repeat=10, warmup=2)
    base_s = timeit(naive, repeat=5, warmup=1)
    return write_result(
        "tune_step",
        ours_s,
        "full-model forward + backward (same frozen weights, same batch of 32)",
        base_s,
        5.0,
        {
            "block": block,
            "batch": 32,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
    )
