"""A small functional forward over a model's own weights (shared, not copied), for every family in
:data:`lftf_interp.models.archs.ARCHS` (Llama, Qwen2, Qwen3, Mistral, Gemma-2, Gemma-3, OLMo-2, Phi-3, GPT-2,
GPT-NeoX).

TransformerLens hooks cost a Python call per hook point per forward. The analyses here need something
else: start a forward at block L from a cached residual, stop early, unembed only the last position,
batch many patched runs and recompute only a suffix on cached keys/values. :class:`Runner` does that in
plain torch, reading each family's block layout from its :class:`~lftf_interp.models.archs.ArchSpec` (RMSNorm or
LayerNorm around each sub-layer, (1 + w) RMSNorm, fused or Conv1D projections, parallel blocks, q/k norms,
scaled embeddings, learned positions, sliding-window layers, soft-capping, biases, RoPE variants and partial
rotary).
It is tested to match Hugging Face and the bridge on every family (tests/models/test_archs.py). It reads the
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
from lftf_interp.models.archs import ArchSpec, arch_spec, canonical_state_dict, check_config, hf_of
from lftf_interp.models.archs import block_param_names as block_param_names  # re-exported
from lftf_interp.models.prefix import PrefixStore, activate, active_prefix, store_for, versions


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
        a = self.arch
        self.cfg = cfg
        self.n_layers = cfg.num_hidden_layers
        self.d_model = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.d_head = getattr(cfg, "head_dim", None) or self.d_model // self.n_heads
        self.eps = getattr(cfg, a.eps)
        self.act = ACT2FN[getattr(cfg, a.act)]
        self.parallel = bool(getattr(cfg, a.parallel)) if a.parallel else False
        self.softcap = getattr(cfg, "attn_logit_softcapping", None)  # tanh-capped attention scores (Gemma-2)
        self.final_softcap = getattr(cfg, "final_logit_softcapping", None)
        self.scale = [self._scale(i) for i in range(self.n_layers)]
        rp = getattr(cfg, "rope_parameters", None) or {}
        types = getattr(cfg, "layer_types", None) or ["full_attention"] * self.n_layers
        per_type = bool(rp) and all(isinstance(v, dict) for v in rp.values())
        self.rope_key = [t if per_type else None for t in types]
        window = getattr(cfg, "sliding_window", None)
        self.window = [
            window if window and (a.window_all or t == "sliding_attention") else None for t in types
        ]
        self.p = canonical_state_dict(model)
        self.d_rot = 0  # rotary dimensions of each head (the first d_rot; GPT-NeoX rotates a quarter)
        if a.rope:
            prf = (rp if not per_type else next(iter(rp.values()))).get("partial_rotary_factor", 1.0)
            self.d_rot = int(self.d_head * (prf or 1.0))
        self._freqs = {k: _inv_freq(cfg, k, self.d_rot) for k in set(self.rope_key)} if a.rope else {}
        self._rope_cache: dict[tuple, tuple[Tensor, Tensor]] = {}
        # per block: its sub-layers (attn, mlp) and norms (attn_in, attn_out, mlp_in, mlp_out) -> parameter prefix
        self.sublayers = [
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
        self._first = {}  # block -> the name of one of its parameters (where the block lives)
        for name in self.p:
            if name.startswith(a.layers + "."):
                self._first.setdefault(int(name[len(a.layers) + 1 :].split(".")[0]), name)
        self.embed_scale = self.d_model**0.5 if a.embed_scale else None
        self.prefix = active_prefix(model)  # a reuse_prefix block's store: forwards start at its block

    def _scale(self, layer: int) -> float | None:
        """The softmax scale of a layer (None: SDPA's default 1/sqrt(d_head))."""
        a, cfg = self.arch, self.cfg
        scalar = getattr(cfg, a.attn_scale) if a.attn_scale else self.d_head
        scale = None if scalar == self.d_head else float(scalar) ** -0.5
        if not getattr(cfg, "scale_attn_weights", True):  # GPT-2's switches
            scale = 1.0
        if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
            scale = (self.d_head**-0.5 if scale is None else scale) / (layer + 1)
        return scale

    # -- pieces -----------------------------------------------------------------------------------------
    def param(self, name: str) -> Tensor | None:
        """A parameter by its canonical name (``model.layers.3.mlp.down_proj.bias``), None where it has none."""
        return self.p.get(name)

    def device_of(self, layer: int) -> torch.device:
        """Where block ``layer``'s weights live (``device_map`` may spread blocks over devices)."""
        return self.p[self._first[layer]].device

    def rms(self, x: Tensor, w: Tensor) -> Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.arch.norm_offset:  # Gemma: (1 + w), in float32, then cast (as Hugging Face does)
            return (normed * (self.arch.norm_offset + w.float())).to(x.dtype)
        return w * normed.to(x.dtype)

    def norm(self, x: Tensor, name: str) -> Tensor:
        """The family's norm (RMSNorm, or LayerNorm with its bias) with the weights of module ``name``."""
        w = self.p[name + ".weight"]
        if self.arch.norm == "layer":
            return F.layer_norm(x, (x.shape[-1],), w, self.param(name + ".bias"), self.eps)
        return self.rms(x, w)

    def rope(self, layer: int, n_pos: int, device) -> tuple[Tensor, Tensor]:
        key = (self.rope_key[layer], n_pos, str(device))
        if key not in self._rope_cache:
            inv, scale = self._freqs[self.rope_key[layer]]
            freqs = torch.arange(n_pos, device=device).float()[:, None] * inv.to(device)[None]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            self._rope_cache[key] = (cos * scale, sin * scale) if scale != 1.0 else (cos, sin)
        return self._rope_cache[key]

    def embed(self, tokens: Int[Tensor, "batch pos"], start: int = 0) -> Float[Tensor, "batch pos d_model"]:
        """Token (and, for learned positions, position) embeddings; ``start``: the first token's position
        (a continuation after cached keys/values)."""
        w = self.p[f"{self.arch.embed}.weight"]
        x = F.embedding(tokens.to(w.device), w)
        if self.embed_scale:
            x = x * torch.tensor(self.embed_scale, dtype=w.dtype)
        if self.arch.pos_embed:
            wpe = self.p[f"{self.arch.pos_embed}.weight"]
            if start + tokens.shape[1] > wpe.shape[0]:
                raise LftfError(
                    f"{self.cfg.model_type} has learned positions for {wpe.shape[0]} tokens; this input reaches "
                    f"{start + tokens.shape[1]}. Shorten it (e.g. a shorter context length)."
                )
            x = x + F.embedding(torch.arange(start, start + tokens.shape[1], device=wpe.device), wpe)
        return x

    def linear(self, x: Tensor, name: str) -> Tensor:
        """The linear layer ``name`` (a prefix of :attr:`sublayers`, e.g. ``...self_attn.o_proj``) applied to x."""
        w = self.p[name + ".weight"]
        return F.linear(x, w.t() if self.arch.conv1d else w, self.param(name + ".bias"))

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
        out = self.linear(z, f"{self.sublayers[layer]['attn']}.{self.arch.o}")
        return (out, kv) if return_kv else out

    def qkv(self, layer: int, x: Float[Tensor, "batch pos d_model"]) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of one block, ``[batch, heads, pos, d_head]``, before RoPE."""
        a, pre = self.arch, self.sublayers[layer]["attn"] + "."
        b, s, _ = x.shape
        nq, nk = self.n_heads * self.d_head, self.n_kv * self.d_head
        if len(a.qkv) == 3:
            q, k, v = (self.linear(x, pre + n) for n in a.qkv)
        elif a.qkv_per_head:  # [q_h | k_h | v_h] for each head h
            q, k, v = (
                t.reshape(b, s, nq)
                for t in self.linear(x, pre + a.qkv[0]).view(b, s, self.n_heads, -1).chunk(3, -1)
            )
        else:
            q, k, v = self.linear(x, pre + a.qkv[0]).split([nq, nk, nk], -1)
        if a.qk_norm == "all":  # OLMo-2: one RMSNorm over every head's queries (keys)
            q, k = self.rms(q, self.p[pre + "q_norm.weight"]), self.rms(k, self.p[pre + "k_norm.weight"])
        q = q.view(b, s, self.n_heads, self.d_head).transpose(1, 2)
        k = k.view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        v = v.view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        if a.qk_norm == "head":
            q, k = self.rms(q, self.p[pre + "q_norm.weight"]), self.rms(k, self.p[pre + "k_norm.weight"])
        return q, k, v

    def _rotate(self, t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        if self.d_rot == self.d_head:
            return t * cos + _rotate_half(t) * sin
        r, rest = t[..., : self.d_rot], t[..., self.d_rot :]  # partial rotary: the rest passes unrotated
        return torch.cat([r * cos + _rotate_half(r) * sin, rest], dim=-1)

    def _qkv_at(self, layer: int, x: Tensor, off: int) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`qkv` after RoPE, for positions ``off`` … ``off + pos - 1``."""
        q, k, v = self.qkv(layer, x)
        if self.d_rot:
            cos, sin = self.rope(layer, off + x.shape[1], x.device)
            cos, sin = cos[off:].to(q.dtype), sin[off:].to(q.dtype)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
        return q, k, v

    def block_last(
        self,
        layer: int,
        resid: Float[Tensor, "batch pos d_model"],
        past_kv: tuple[Tensor, Tensor] | None = None,
    ) -> Float[Tensor, "batch 1 d_model"]:
        """:meth:`block`'s output at the last position only. The other positions enter as keys and values
        (their normed input's k / v projections), which is all the last position reads of them: a run that
        needs only the final position's logits skips the attention output and MLP of every other position in
        its last block."""
        if resid.shape[1] > 1:
            off = 0 if past_kv is None else past_kv[0].shape[2]
            _, k, v = self._qkv_at(layer, self.norm_at(layer, "attn_in", resid[:, :-1]), off)
            past_kv = (
                (k, v) if past_kv is None else (torch.cat([past_kv[0], k], 2), torch.cat([past_kv[1], v], 2))
            )
        return self.block(layer, resid[:, -1:], past_kv=past_kv)

    def attn_z(
        self, layer: int, x: Float[Tensor, "batch pos d_model"], past_kv: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Float[Tensor, "batch pos n_heads*d_head"], tuple[Tensor, Tensor]]:
        """The heads' outputs before the output projection (head h: columns h·d_head …), and this call's (k, v)."""
        b, s, _ = x.shape
        off = 0 if past_kv is None else past_kv[0].shape[2]
        q, k, v = self._qkv_at(layer, x, off)
        kv = (k, v)
        gqa = self.n_kv != self.n_heads
        scale = self.scale[layer]
        window = self.window[layer] if self.window[layer] and self.window[layer] < off + s else None
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], 2), torch.cat([past_kv[1], v], 2)
        if past_kv is None and window is None and self.softcap is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa, scale=scale)
            return z.transpose(1, 2).reshape(b, s, -1), kv
        qpos = (off + torch.arange(s, device=x.device))[:, None]
        kpos = torch.arange(off + s, device=x.device)[None]
        mask = kpos <= qpos
        if window is not None:  # a sliding-window layer sees the last `window` positions only
            mask &= kpos > qpos - window
        if self.softcap is None:
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa, scale=scale)
        else:  # scores capped by cap·tanh(scores / cap) before the mask (Gemma-2), as Hugging Face's eager path
            if gqa:
                k, v = (t.repeat_interleave(self.n_heads // self.n_kv, 1) for t in (k, v))
            w = q @ k.transpose(2, 3) * (self.d_head**-0.5 if scale is None else scale)
            w = torch.tanh(w / self.softcap) * self.softcap
            w = w.masked_fill(~mask, torch.finfo(w.dtype).min)
            z = w.softmax(-1, dtype=torch.float32).to(q.dtype) @ v
        return z.transpose(1, 2).reshape(b, s, -1), kv

    def mlp(self, layer: int, x: Tensor) -> Tensor:
        return self.linear(self.mlp_acts(layer, x), f"{self.sublayers[layer]['mlp']}.{self.arch.down}")

    def mlp_acts(self, layer: int, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_mlp"]:
        """The MLP neurons' activations, the input of the down projection (neuron j: its column j): act(gate) ·
        up for a gated MLP (separate or fused [gate | up]), else act(up)."""
        proj, pre = self.arch.mlp_in_proj, self.sublayers[layer]["mlp"] + "."
        if len(proj) == 2:
            return self.act(self.linear(x, pre + proj[0])) * self.linear(x, pre + proj[1])
        h = self.linear(x, pre + proj[0])
        if self.arch.gate_up:
            gate, up = h.chunk(2, -1)
            return up * self.act(gate)
        return self.act(h)

    def norm_at(self, layer: int, which: str, x: Tensor) -> Tensor:
        """Block ``layer``'s norm ``which`` (attn_in, attn_out, mlp_in, mlp_out) on x; x itself where the family
        has none there."""
        name = self.sublayers[layer].get(which)
        return x if name is None else self.norm(x, name)

    def mlp_half(
        self,
        layer: int,
        mid: Float[Tensor, "batch pos d_model"],
        resid_pre: Float[Tensor, "batch pos d_model"] | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """resid_mid -> resid_post: the second half of a block. A parallel block's MLP reads the block input
        ``resid_pre`` instead of ``mid``."""
        if self.parallel:
            if resid_pre is None:
                raise ValueError("a parallel block's MLP reads resid_pre: pass it to mlp_half")
            return mid + self.norm_at(
                layer, "mlp_out", self.mlp(layer, self.norm_at(layer, "mlp_in", resid_pre))
            )
        return mid + self.norm_at(layer, "mlp_out", self.mlp(layer, self.norm_at(layer, "mlp_in", mid)))

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
        attn_out, kv = self.attn(layer, self.norm_at(layer, "attn_in", resid), past_kv, True)
        attn_out = self.norm_at(layer, "attn_out", attn_out)
        if self.parallel:  # both read the block input; summed in Hugging Face's order
            mlp_out = self.norm_at(layer, "mlp_out", self.mlp(layer, self.norm_at(layer, "mlp_in", resid)))
            out = mlp_out + attn_out + resid
        else:
            mid = resid + attn_out
            mlp_out = self.norm_at(layer, "mlp_out", self.mlp(layer, self.norm_at(layer, "mlp_in", mid)))
            out = mid + mlp_out
        res = (out, attn_out, mlp_out) if return_parts else (out,)
        if return_kv:
            res = (*res, kv)
        return res if len(res) > 1 else res[0]

    def unembed(self, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab"]:
        """Final norm + unembedding (+ the final soft-cap where the family has one): the logit lens on any
        residual."""
        head = self.arch.head
        w = self.p[f"{head}.weight"]
        x = resid.to(w.device)
        if self.arch.final_norm:
            x = self.norm(x, self.arch.final_norm)
        logits = F.linear(x, w, self.param(f"{head}.bias"))
        if self.final_softcap:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits

    # -- whole runs ---------------------------------------------------------------------------------------
    def walk(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        start: int = 0,
        stop: int | None = None,
        parts: bool = False,
        past_kv: Sequence[tuple[Tensor, Tensor] | None] | None = None,
    ) -> Iterator[BlockStep]:
        """The one block-by-block loop: a :class:`BlockStep` for each block ``start .. stop-1``.

        With ``parts=True`` each step also carries the block's attention and MLP outputs and its (k, v).
        ``past_kv[layer]`` holds keys/values of earlier positions (incremental decoding; None: none for that
        layer). The residual moves to each block's device (models spread over devices by ``device_map``)."""
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
