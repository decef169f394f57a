"""Placement: --device / --dtype validation, scoping, and accelerate's block-by-block device_map on CPU."""

import pytest
import torch

from lftf_interp.models.loading import load_model
from lftf_interp.models.placement import Placement, current_placement, placement
from lftf_interp.models.tokens import encode_batch


def test_placement_block_by_block_device_map(tiny3_dir):
    """accelerate's placement: a model loaded with a device_map, one entry per block, runs through the runner
    as the unmapped model does, and the runner reports each block's device. (On this CPU-only machine every entry
    is "cpu"; a GPU run splits blocks between cuda:0 and cpu the same way.)"""
    from lftf_interp.models.runner import Runner

    n = 3
    dm = {
        "model.embed_tokens": "cpu",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
        **{f"model.layers.{i}": "cpu" for i in range(n)},
    }
    mapped = load_model(tiny3_dir, Placement(device_map=dm, max_memory={"cpu": "1GiB"}))
    plain = load_model(tiny3_dir)
    ids, lengths = encode_batch(plain, ["The nurse said that", "The farmer went home because"])
    runner = Runner(mapped)
    assert [runner.device_of(i).type for i in range(n)] == ["cpu"] * n
    with torch.no_grad():
        torch.testing.assert_close(runner.last_logits(ids, lengths), Runner(plain).last_logits(ids, lengths))


def test_placement_is_validated_and_scoped():
    from lftf_interp.errors import ConfigError

    with pytest.raises(ConfigError, match="dtype 'float16'"):
        Placement(dtype="float16")
    with pytest.raises(ConfigError, match="device 'tpu'"):
        Placement(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            Placement(device="cuda").resolved_device()
    assert Placement(device="auto").resolved_device() in ("cpu", "cuda")
    with placement(Placement(dtype="bfloat16")):
        assert current_placement().dtype == "bfloat16"
    assert current_placement() == Placement()


def test_the_residual_follows_each_blocks_device():
    """A block whose weights sit on another device gets the residual moved there (here: block 2 on "meta", the
    shape-only device, so the hop is visible on a CPU-only machine)."""
    from lftf_interp.models.archs import submodule
    from lftf_interp.models.loading import tiny_model
    from lftf_interp.models.runner import Runner

    m = tiny_model(3, seed=1)
    submodule(m.original_model, "model.layers.2").to("meta")
    runner = Runner(m)
    assert [runner.device_of(i).type for i in range(3)] == ["cpu", "cpu", "meta"]
    ids, _ = encode_batch(m, ["The nurse said that"])
    with torch.no_grad():
        steps = list(runner.walk(runner.embed(ids)))
    assert [s.resid_pre.device.type for s in steps] == ["cpu", "cpu", "meta"]
    assert steps[-1].resid_post.device.type == "meta" and steps[-1].resid_post.shape == (1, ids.shape[1], 64)
