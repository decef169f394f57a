"""Path patching from a tuned block: every receiver together is the tuned model, single receivers add up to the
total to first order, and one head's and one MLP's effects equal the same patch made with Hugging Face hooks."""

import pytest
import torch

from lftf_interp.errors import ConfigError
from lftf_interp.models.loading import plain_copy, tiny_model
from lftf_interp.models.runner import Runner, canonical_state_dict
from lftf_interp.models.tokens import encode_batch, target_ids
from lftf_interp.probes.paths import patched_resid, path_patching, receivers_after

PROMPTS = ["The nurse said that", "The farmer went home because", "The engineer told the doctor that"]
S = 1  # the tuned block of a 4-block model: blocks 2 and 3 and the readout receive


def tuned_pair(eps: float = 0.2, dtype=torch.float32, arch: str = "llama"):
    """(model with block S moved by eps · noise, the base weights)."""
    m = tiny_model(4, seed=3, arch=arch)
    m.original_model.to(dtype)
    params = canonical_state_dict(m)
    base = {n: p.detach().clone() for n, p in params.items()}
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in params.items():
            if n.startswith(f"model.layers.{S}.") and p.dim() == 2:
                p.add_(eps * p.std() * torch.randn(p.shape, generator=g).to(dtype))
    return m, base


def test_every_receiver_together_is_the_tuned_model():
    m, base = tuned_pair()
    runner = Runner(m)
    ids, _ = encode_batch(m, PROMPTS[:1])
    with torch.no_grad():
        tuned_params = canonical_state_dict(m)
        resid = runner.run(runner.embed(ids), 0, S)
        post_t = runner.block(S, resid)
        final_t = runner.run(post_t, S + 1)
        saved = {n: tuned_params[n].clone() for n in base if n.startswith(f"model.layers.{S}.")}
        for n in saved:
            tuned_params[n].copy_(base[n])
        post_b = runner.block(S, resid)
        for n, v in saved.items():
            tuned_params[n].copy_(v)
        joint = patched_resid(runner, S, post_b, post_t - post_b, set(receivers_after(runner, S)))
    assert (post_t - post_b).abs().max() > 0.05
    torch.testing.assert_close(joint, final_t, atol=1e-5, rtol=1e-5)


def _first_order_errors(eps: float) -> tuple[float, float, object]:
    m, base = tuned_pair(eps=eps)
    frame, summary = path_patching(m, base, S, PROMPTS)
    total, single = summary["total_change"], summary["sum_of_single_receivers"]
    return abs(single["all"] / total - 1), abs((single["last"] + single["context"]) / total - 1), frame


def test_single_receivers_add_up_to_first_order():
    big_all, big_split, _ = _first_order_errors(0.03)
    all_, split, frame = _first_order_errors(0.003)
    # second-order terms: the gap shrinks with the change (0.021 -> 0.003 measured), down to float32 noise
    assert all_ < 0.006 and split < 0.006
    assert all_ < big_all / 3 and split < big_split / 3
    for p in ("all", "last", "context"):  # 4 heads and the MLP of blocks 2 and 3, then the readout
        assert len(frame[frame.positions == p]) == 2 * (4 + 1) + 1
    # the readout and the last block's MLP read only the last token: earlier positions reach them through attention
    ctx = frame[frame.positions == "context"]
    assert ctx[ctx.receiver == "direct"].effect.abs().max() == 0.0
    assert ctx[(ctx.receiver == "mlp") & (ctx.layer == 3)].effect.abs().max() == 0.0
    assert ctx[(ctx.receiver == "mlp") & (ctx.layer == 2)].effect.abs().max() > 0.0


def _hf_effect(m, base, receiver, prompt: str) -> float:
    """The same patch with Hugging Face hooks on a plain copy: δ from block S's forward hooks (base vs tuned), then
    a base forward whose MLP (or head h's slice of o_proj's input) reads resid + δ."""
    tuned = plain_copy(m).eval()
    plain = plain_copy(m, {**canonical_state_dict(m), **base}).eval()
    ids, _ = encode_batch(m, [prompt])
    he, she = target_ids(m, [" he"])[0], target_ids(m, [" she"])[0]

    def post(model) -> torch.Tensor:
        out = {}
        h = model.model.layers[S].register_forward_hook(
            lambda mod, a, o: out.setdefault("x", o[0] if isinstance(o, tuple) else o)
        )
        model(input_ids=ids)
        h.remove()
        return out["x"]

    delta = post(tuned) - post(plain)
    base_logits = plain(input_ids=ids).logits[0, -1]
    layer = plain.model.layers[receiver[1]]
    if receiver[0] == "mlp":
        hooks = [layer.post_attention_layernorm.register_forward_pre_hook(lambda mod, a: (a[0] + delta,))]
    else:
        got = {}
        d_head = m.cfg.d_model // m.cfg.n_heads
        sl = slice(receiver[2] * d_head, (receiver[2] + 1) * d_head)
        h1 = layer.input_layernorm.register_forward_pre_hook(lambda mod, a: (a[0] + delta,))
        h2 = layer.self_attn.o_proj.register_forward_pre_hook(
            lambda mod, a: got.setdefault("z", a[0].clone())
        )
        plain(input_ids=ids)  # head h's input with δ
        h1.remove(), h2.remove()

        def splice(mod, a):
            z = a[0].clone()
            z[..., sl] = got["z"][..., sl]
            return (z,)

        hooks = [layer.self_attn.o_proj.register_forward_pre_hook(splice)]
    patched = plain(input_ids=ids).logits[0, -1]
    for h in hooks:
        h.remove()
    b = float(base_logits[he] - base_logits[she])
    return (1.0 if b >= 0 else -1.0) * (float(patched[he] - patched[she]) - b)


@pytest.mark.parametrize("receiver", [("head", 2, 1), ("mlp", 3)])
def test_a_head_and_an_mlp_equal_the_same_patch_with_hugging_face_hooks(receiver):
    m, base = tuned_pair()
    frame, _ = path_patching(m, base, S, PROMPTS[:1], receivers=[receiver], positions=("all",))
    with torch.no_grad():
        ref = _hf_effect(m, base, receiver, PROMPTS[0])
    assert abs(ref) > 1e-3
    assert frame["effect"].iloc[0] == pytest.approx(ref, abs=1e-5)


def test_bad_calls_are_refused_before_any_work():
    m, base = tuned_pair()
    with pytest.raises(ConfigError, match="one of the model's blocks 0..3"):
        path_patching(m, base, 4, PROMPTS)
    with pytest.raises(ConfigError, match="positions must be among"):
        path_patching(m, base, S, PROMPTS, positions=("first",))
    with pytest.raises(ConfigError, match="holds no weights of block"):
        path_patching(m, {}, S, PROMPTS)
