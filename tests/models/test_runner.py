"""The functional runner against the bridge and a plain Hugging Face forward."""

import torch

from lftf_interp.models.runner import Runner
from lftf_interp.models.tokens import encode_batch


def test_runner_matches_bridge(tiny_bridge):
    ids, lengths = encode_batch(tiny_bridge, ["The nurse said that", "The farmer went home because"])
    runner = Runner(tiny_bridge)
    with torch.no_grad():
        ref = tiny_bridge(ids)
        ours = runner.logits(ids)
        last = runner.last_logits(ids, lengths)
    assert ref.std() > 0.5  # the random model is not trivially flat
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(last, ref[torch.arange(2), lengths - 1], atol=1e-4, rtol=1e-4)


def test_walk_is_the_block_loop_of_run_and_its_parts_add_up(tiny3):
    runner = Runner(tiny3)
    ids, _ = encode_batch(tiny3, ["The nurse said that"])
    x = runner.embed(ids)
    with torch.no_grad():
        steps = list(runner.walk(x, parts=True))
        assert [s.layer for s in steps] == [0, 1, 2]
        for s in steps:
            torch.testing.assert_close(s.resid_post, s.resid_pre + s.attn_out + s.mlp_out)
            k, v = s.kv
            assert k.shape[2] == ids.shape[1] and v.shape == k.shape
        torch.testing.assert_close(steps[-1].resid_post, runner.run(x))
        assert all(s.attn_out is None and s.kv is None for s in runner.walk(x))  # parts only when asked
        torch.testing.assert_close(runner.run(steps[1].resid_pre, start=1), runner.run(x))  # block 1 onwards
        mid = runner.run(x, stop=2)
        torch.testing.assert_close(runner.run(mid, start=2), runner.run(x))
        # incremental decoding: the last token alone, on the keys/values of the others, gives the same output
        kvs = [s.kv for s in runner.walk(x[:, :-1], parts=True)]
        last, _ = runner.walk_to_end(x[:, -1:], past_kv=kvs)
        torch.testing.assert_close(last[:, 0], runner.run(x)[:, -1], atol=1e-5, rtol=1e-5)
