"""A small functional forward over a model's own weights (shared, not copied), for every family in
:data:`lftf_interp.models.archs.ARCHS` (Llama, Qwen2, Gemma-3).

TransformerLens hooks cost a Python call per hook point per forward. The analyses here need something
else: start a forward at block L from a cached residual, stop early, unembed only the last position,
batch many patched runs and recompute only a suffix on cached keys/values. :class:`Runner` does that in
plain torch, reading each family's block layout from its :class:`~lftf_interp.models.archs.ArchSpec` (norms around
each sub-layer, (1 + w) RMSNorm, q/k norms, scaled embeddings, sliding-window layers, biases, RoPE variants).
It is tested to match Hugging Face and the bridge on every family (tests/test_archs.py). It reads the
parameters of the model it wraps, so a fine-tune of the bridge is seen by the runner at once.

Why a functional forward rather than driving Hugging Face's decoder-layer modules: those take a cache object,
4-D masks and position embeddings whose signatures change between transformers releases, and they cannot
return the attention and MLP outputs separately; here the per-family difference is a table row, and the
speed tricks above are written once.

Models placed over several devices (``device_map``) work as they are: each block runs where its weights
live and the residual stream moves with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from transformers.activations import ACT2FN

from lftf_interp.errors import LftfError
from lftf_interp.models.archs import (
    ArchSpec,
    arch_spec,
    check_config,
    plain_named_parameters,
    submodule,
    unwrap,
)
from lftf_interp.models.prefix import PrefixStore, activate, active_prefix, store_for, versions


def hf_of(model):
    return getattr(model, "original_model", model)


def canonical_state_dict(model) -> dict[str, torch.nn.Parameter]:
    """Parameters under their plain Hugging Face names (``model.layers.3.mlp.up_proj.weight``), shared, read from
    the module tree (biases, q/k norms and extra norms included; the bridge's aliases left out)."""
    hf = hf_of(model)
    params = dict(plain_named_parameters(hf))
    head = f"{arch_spec(model).head}.weight"
    if head not in params:  # tied and not registered twice
        params[head] = unwrap(hf.get_output_embeddings()).weight
    return params


def block_param_names(model, layer: int) -> list[str]:
    """Names of the attention + MLP parameters of one block (what LFTF trains), read from the block module."""
    hf = hf_of(model)
    arch = arch_spec(model)
    block = submodule(hf, f"{arch.layers}.{layer}")
    pre = f"{arch.layers}.{layer}."
    return [pre + n for n, _ in plain_named_parameters(block) if n.split(".")[0] in arch.trainable]


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def _inv_freq(cfg, layer_type: str | None, d_head: int) -> tuple[Tensor, float]:
    """RoPE inverse frequencies and cos/sin scale for one layer type, as Hugging Face computes them."""
    rp = cfg.rope_parameters[layer_type] if layer_type else (getattr(cfg, "rope_parameters", None) or {})
    rt = rp.get("rope_type", "default")
    if rt == "default":
        theta = float(rp.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
        return 1.0 / (theta ** (torch.arange(0, d_head, 2).float() / d_head)), 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inv, scale = ROPE_INIT_FUNCTIONS[rt](cfg, "cpu", layer_type=layer_type)
    return inv.float(), float(scale)


class BlockStep(NamedTuple):
    """One block of :meth:`Runner.walk`: its input and output residual stream and, with ``parts=True``, what
    attention and the MLP added to the residual and the block's keys / values."""

    layer: int
    resid_pre: Tensor  # [batch, pos, d_model]
    resid_post: Tensor  # [batch, pos, d_model]
    attn_out: Tensor = None  # type: ignore[assignment]  # None unless walk(parts=True)
    mlp_out: Tensor = None  # type: ignore[assignment]  # None unless walk(parts=True)
    kv: tuple[Tensor, Tensor] = None  # type: ignore[assignment]  # None unless walk(parts=True)


PATHS: dict[str, type[Runner]] = {}  # forward path name -> the Runner subclass that registered for it


def register_path(cls: type[Runner]) -> type[Runner]:
    """Class decorator: ``cls`` runs the models whose :func:`~lftf_interp.models.archs.arch_spec` is not fast
    (``cls.path``); :mod:`lftf_interp.models.generic` registers itself when the package is imported."""
    PATHS[cls.path] = cls
    return cls


class Runner:
    """Block-by-block forward. Residual tensors are ``[batch, pos, d_model]``.

    ``Runner(model)`` gives this fast forward for a family with a row in
    :data:`~lftf_interp.models.archs.ARCHS`, and a :class:`~lftf_interp.models.generic.GenericRunner` (the same
    interface over the model's own modules) for any other architecture the bridge boots."""

    path = "fast"
    supports_past_kv = True  # attention takes cached keys/values of earlier positions

    def __new__(cls, model):
        if cls is Runner and (getattr(model, "lftf_forward", None) == "generic" or not arch_spec(model).fast):
            return super().__new__(PATHS["generic"])
        return super().__new__(cls)

    def __init__(self, model):
        hf = hf_of(model)
        cfg = hf.config
        self.arch: ArchSpec = check_config(cfg)
        self.cfg = cfg
        self.n_layers = cfg.num_hidden_layers
        self.d_model = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.d_head = getattr(cfg, "head_dim", None) or self.d_model // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.act = ACT2FN[getattr(cfg, self.arch.act)]
        scalar = getattr(cfg, self.arch.attn_scale) if self.arch.attn_scale else self.d_head
        self.scale = (
            None if scalar == self.d_head else float(scalar) ** -0.5
        )  # None: SDPA's default 1/sqrt(d_head)
        rp = getattr(cfg, "rope_parameters", None) or {}
        types = getattr(cfg, "layer_types", None) or ["full_attention"] * self.n_layers
        per_type = bool(rp) and all(isinstance(v, dict) for v in rp.values())
        self.rope_key = [t if per_type else None for t in types]
        window = getattr(cfg, "sliding_window", None)
        self.window = [
            window if window and (self.arch.window_all or t == "sliding_attention") else None for t in types
        ]
        self.p = canonical_state_dict(model)
        self._freqs = {k: _inv_freq(cfg, k, self.d_head) for k in set(self.rope_key)}
        self._rope_cache: dict[tuple, tuple[Tensor, Tensor]] = {}
        a = self.arch
        self._names = [
            {
                k: f"{a.layers}.{i}.{v}"
                for k, v in (
                    ("attn", a.attn),
                    ("mlp", a.mlp),
                    ("attn_in", a.attn_in),
                    ("attn_out", a.attn_out),
                    ("mlp_in", a.mlp_in),
                    ("mlp_out", a.mlp_out),
                )
                if v
            }
            for i in range(self.n_layers)
        ]
        self.embed_scale = self.d_model**0.5 if a.embed_scale else None
        self.prefix = active_prefix(model)  # a reuse_prefix block's store: forwards start at its block

    # -- pieces -----------------------------------------------------------------------------------------
    def _w(self, name: str) -> Tensor | None:
        return self.p.get(name)

    def device_of(self, layer: int) -> torch.device:
        """Where block ``layer``'s weights live (``device_map`` may spread blocks over devices)."""
        return self.p[f"{self._names[layer]['attn']}.q_proj.weight"].device

    def rms(self, x: Tensor, w: Tensor) -> Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.arch.norm_offset:  # Gemma: (1 + w), in float32, then cast (as Hugging Face does)
            return (normed * (self.arch.norm_offset + w.float())).to(x.dtype)
        return w * normed.to(x.dtype)

    def rope(self, layer: int, n_pos: int, device) -> tuple[Tensor, Tensor]:
        key = (self.rope_key[layer], n_pos, str(device))
        if key not in self._rope_cache:
            inv, scale = self._freqs[self.rope_key[layer]]
            freqs = torch.arange(n_pos, device=device).float()[:, None] * inv.to(device)[None]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            self._rope_cache[key] = (cos * scale, sin * scale) if scale != 1.0 else (cos, sin)
        return self._rope_cache[key]

    def embed(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        w = self.p[f"{self.arch.embed}.weight"]
        x = F.embedding(tokens.to(w.device), w)
        return x * torch.tensor(self.embed_scale, dtype=w.dtype) if self.embed_scale else x

    def _linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self.p[name + ".weight"], self._w(name + ".bias"))

    def attn(
        self,
        layer: int,
        x: Float[Tensor, "batch pos d_model"],
        past_kv: tuple[Tensor, Tensor] | None = None,
        return_kv: bool = False,
    ):
        """Self-attention of one block (on its normed input). ``past_kv`` (keys after RoPE, values) of earlier
        positions lets a run recompute only a suffix of the sequence; ``return_kv`` also returns this call's (k, v)."""
        z, kv = self.attn_z(layer, x, past_kv)
        out = self._linear(z, self._names[layer]["attn"] + ".o_proj")
        return (out, kv) if return_kv else out

    def attn_z(
        self, layer: int, x: Float[Tensor, "batch pos d_model"], past_kv: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Float[Tensor, "batch pos n_heads*d_head"], tuple[Tensor, Tensor]]:
        """The heads' outputs before o_proj (head h: columns h·d_head …), and this call's (k, v)."""
        pre = self._names[layer]["attn"] + "."
        b, s, _ = x.shape
        off = 0 if past_kv is None else past_kv[0].shape[2]
        q = self._linear(x, pre + "q_proj").view(b, s, self.n_heads, self.d_head).transpose(1, 2)
        k = self._linear(x, pre + "k_proj").view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        v = self._linear(x, pre + "v_proj").view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        if self.arch.qk_norm:
            q, k = self.rms(q, self.p[pre + "q_norm.weight"]), self.rms(k, self.p[pre + "k_norm.weight"])
        cos, sin = self.rope(layer, off + s, x.device)
        cos, sin = cos[off:].to(q.dtype), sin[off:].to(q.dtype)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        kv = (k, v)
        gqa = self.n_kv != self.n_heads
        window = self.window[layer] if self.window[layer] and self.window[layer] < off + s else None
        if past_kv is None and window is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa, scale=self.scale)
        else:
            if past_kv is not None:
                k, v = torch.cat([past_kv[0], k], 2), torch.cat([past_kv[1], v], 2)
            qpos = (off + torch.arange(s, device=x.device))[:, None]
            kpos = torch.arange(off + s, device=x.device)[None]
            mask = kpos <= qpos
            if window is not None:  # a sliding-window layer sees the last `window` positions only
                mask &= kpos > qpos - window
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa, scale=self.scale)
        return z.transpose(1, 2).reshape(b, s, -1), kv

    def mlp(self, layer: int, x: Tensor) -> Tensor:
        return self._linear(self.mlp_acts(layer, x), self._names[layer]["mlp"] + ".down_proj")

    def mlp_acts(self, layer: int, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_mlp"]:
        """The MLP neurons' activations act(gate) · up, the input of down_proj (neuron j: its column j)."""
        pre = self._names[layer]["mlp"] + "."
        return self.act(self._linear(x, pre + "gate_proj")) * self._linear(x, pre + "up_proj")

    def _norm(self, layer: int, which: str, x: Tensor) -> Tensor:
        name = self._names[layer].get(which)
        return x if name is None else self.rms(x, self.p[name + ".weight"])

    def mlp_half(
        self, layer: int, mid: Float[Tensor, "batch pos d_model"]
    ) -> Float[Tensor, "batch pos d_model"]:
        """resid_mid -> resid_post: the second half of a block."""
        return mid + self._norm(layer, "mlp_out", self.mlp(layer, self._norm(layer, "mlp_in", mid)))

    def block(
        self,
        layer: int,
        resid: Float[Tensor, "batch pos d_model"],
        return_parts: bool = False,
        past_kv: tuple[Tensor, Tensor] | None = None,
        return_kv: bool = False,
    ):
        """resid_pre -> resid_post of one block; ``return_parts`` adds (attn_out, mlp_out) as added to the
        residual, ``return_kv`` the block's (k, v); ``past_kv`` holds keys/values of earlier positions."""
        attn_out, kv = self.attn(layer, self._norm(layer, "attn_in", resid), past_kv, True)
        attn_out = self._norm(layer, "attn_out", attn_out)
        mid = resid + attn_out
        mlp_out = self._norm(layer, "mlp_out", self.mlp(layer, self._norm(layer, "mlp_in", mid)))
        out = mid + mlp_out
        res = (out, attn_out, mlp_out) if return_parts else (out,)
        if return_kv:
            res = (*res, kv)
        return res if len(res) > 1 else res[0]

    def unembed(self, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab"]:
        """Final RMSNorm + unembedding (the logit lens on any residual)."""
        w = self.p["lm_head.weight"]
        x = self.rms(resid.to(w.device), self.p[f"{self.arch.final_norm}.weight"])
        return F.linear(x, w, self._w("lm_head.bias"))

    # -- whole runs ---------------------------------------------------------------------------------------
    def walk(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        start: int = 0,
        stop: int | None = None,
        parts: bool = False,
        past_kv: Sequence[tuple[Tensor, Tensor]] | None = None,
    ) -> Iterator[BlockStep]:
        """The one block-by-block loop: a :class:`BlockStep` for each block ``start .. stop-1``.

        With ``parts=True`` each step also carries the block's attention and MLP outputs and its (k, v).
        ``past_kv[layer]`` holds keys/values of earlier positions (incremental decoding). The residual moves to
        each block's device (models spread over devices by ``device_map``)."""
        for layer in range(start, self.n_layers if stop is None else stop):
            pk = None if past_kv is None else past_kv[layer]
            dev = self.device_of(layer)
            if resid.device != dev:
                resid = resid.to(dev)
            if parts:
                post, attn_out, mlp_out, kv = self.block(
                    layer, resid, return_parts=True, past_kv=pk, return_kv=True
                )
                yield BlockStep(layer, resid, post, attn_out, mlp_out, kv)
            else:
                post = self.block(layer, resid, past_kv=pk)
                yield BlockStep(layer, resid, post)
            resid = post

    def walk_to_end(
        self,
        resid: Tensor,
        past_kv: Sequence[tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Tensor, list[BlockStep]]:
        """Every block with its parts: (the last block's resid_post, the steps)."""
        steps = list(self.walk(resid, parts=True, past_kv=past_kv))
        return (steps[-1].resid_post if steps else resid), steps

    def run(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        start: int = 0,
        stop: int | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """Run blocks ``start .. stop-1`` on a residual stream (resid_pre of ``start``)."""
        out = resid
        for step in self.walk(resid, start, stop):
            out = step.resid_post
        return out

    def last_logits(
        self, tokens: Int[Tensor, "batch pos"], lengths: Int[Tensor, " batch"] | None = None
    ) -> Float[Tensor, "batch d_vocab"]:
        """Logits at each row's last real token (right-padded batches; causal attention ignores the pads)."""
        resid = self.run_tokens(tokens, lengths)
        idx = (lengths - 1) if lengths is not None else torch.full((tokens.shape[0],), tokens.shape[1] - 1)
        return self.unembed(resid[torch.arange(tokens.shape[0]), idx.to(resid.device)])

    def enter(
        self, tokens: Int[Tensor, "batch pos"], lengths: Int[Tensor, " batch"] | None = None
    ) -> tuple[Float[Tensor, "batch pos d_model"], int]:
        """Where a forward on right-padded ``tokens`` starts: (the embedding, block 0), or inside
        :func:`reuse_prefix` (the stored residual entering its block, that block)."""
        if self.prefix is None:
            return self.embed(tokens), 0
        return self.prefix.resid(self, tokens, lengths), self.prefix.start

    def run_tokens(
        self, tokens: Int[Tensor, "batch pos"], lengths: Int[Tensor, " batch"] | None = None
    ) -> Float[Tensor, "batch pos d_model"]:
        """The last block's output for right-padded token ids (from :meth:`enter`)."""
        resid, start = self.enter(tokens, lengths)
        return self.run(resid, start=start)

    def logits(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
        return self.unembed(self.run(self.embed(tokens)))


@contextmanager
def reuse_prefix(model, start: int) -> Iterator[PrefixStore | None]:
    """Within the block, every Runner on ``model`` starts its forwards at block ``start`` from stored
    residuals (:mod:`lftf_interp.models.prefix`; ``start`` 0: a plain forward). Refuses to go on if the weights
    before ``start`` change inside."""
    if start <= 0:
        yield None
        return
    runner = Runner(model)
    store, before = store_for(runner, start), versions(runner, start)
    activate(model, store)
    try:
        yield store
    finally:
        activate(model, None)
        store.save()
    if versions(runner, start) != before:
        raise LftfError(
            f"The weights before block {start} changed inside reuse_prefix: its residuals no longer apply. "
            "Train outside the block."
        )
