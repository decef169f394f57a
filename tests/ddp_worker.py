"""A fine-tune under torchrun (the data-parallel test): tiny model, every method, the tuned weights to OUT."""

import sys

import torch
from safetensors.torch import save_file

from lftf_interp.models.loading import tiny_model
from lftf_interp.models.runner import canonical_state_dict
from lftf_interp.tune import TuneConfig, tune
from lftf_interp.tune.parallel import is_main, world

CFG = dict(
    steps=4, batch_size=8, eval_every=2, n_val=16, n_train=64, lr=3e-3, hint_weight=0.5, mass_weight=1.0
)
RUNS = {"block": dict(block=2), "lora": dict(method="lora", lora_r=4), "full": dict(method="full", lr=1e-4)}


def main(out: str) -> None:
    torch.set_num_threads(1)
    for name, over in RUNS.items():
        m = tiny_model(3, seed=5)
        res = tune(m, TuneConfig(**{**CFG, **over}))
        if is_main():
            w = {k: v.detach().contiguous().clone() for k, v in canonical_state_dict(m).items()}
            w["world"] = torch.tensor([world()[1]])
            w["history_loss"] = torch.tensor(res.history["loss"].fillna(0).to_numpy())
            save_file(w, f"{out}/{name}.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
