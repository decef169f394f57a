"""A small functional Llama forward over a bridge's own weights (shared, not copied).

TransformerLens hooks cost a Python call per hook point per forward. The analyses here need something
else: start a forward at block L from a cached residual, stop early, unembed only the last position, and
batch many patched runs. :class:`LlamaRunner` does that in ~60 lines of plain torch and is tested to match
the bridge's logits (tests/test_runner.py). It reads the parameters of the model it wraps, so a fine-tune
of the bridge is seen by the runner at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

_STRIP = "._original_component"


def _hf(model):
    return getattr(model, "original_model", model)


_HF_NAME = re.compile(
    r"^(model\.embed_tokens|model\.norm|lm_head|model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|"
    r"input_layernorm|post_attention_layernorm))\.weight$"
)


def canonical_state_dict(model) -> dict[str, torch.nn.Parameter]:
    """Parameters under their plain Hugging Face names (``model.layers.3.mlp.up_proj.weight``), shared.

    The bridge also exposes each weight under TransformerLens aliases (``attn.q``); those are left out."""
    named = _hf(model).named_parameters(remove_duplicate=False)
    params = {k.replace(_STRIP, ""): p for k, p in named if _HF_NAME.match(k.replace(_STRIP, ""))}
    if "lm_head.weight" not in params:
        params["lm_head.weight"] = params["model.embed_tokens.weight"]
    return params


def block_param_names(layer: int) -> list[str]:
    """Names of the attention + MLP parameters of one block (what LFTF trains)."""
    pre = f"model.layers.{layer}."
    return [
        pre + s
        for s in (
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "self_attn.o_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        )
    ]


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


class LlamaRunner:
    """Block-by-block Llama forward. Residual tensors are ``[batch, pos, d_model]``."""

    def __init__(self, model):
        hf = _hf(model)
        cfg = hf.config
        if cfg.model_type != "llama":
            raise NotImplementedError(
                f"LlamaRunner supports Llama-family models (SmolLM2, tiny Llama); got model_type={cfg.model_type!r}."
            )
        self.cfg = cfg
        self.n_layers = cfg.num_hidden_layers
        self.d_model = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.d_head = getattr(cfg, "head_dim", None) or self.d_model // self.n_heads
        self.eps = cfg.rms_norm_eps
        rope = getattr(cfg, "rope_parameters", None) or {}
        self.theta = float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
        self.p = canonical_state_dict(model)
        self._rope_cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    # -- pieces -----------------------------------------------------------------------------------------
    def rms(self, x: Tensor, w: Tensor) -> Tensor:
        xf = x.float()
        return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def rope(self, n_pos: int, device) -> tuple[Tensor, Tensor]:
        key = (n_pos, str(device))
        if key not in self._rope_cache:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.d_head, 2, device=device).float() / self.d_head))
            freqs = torch.arange(n_pos, device=device).float()[:, None] * inv[None]
            emb = torch.cat((freqs, freqs), dim=-1)
            self._rope_cache[key] = (emb.cos(), emb.sin())
        return self._rope_cache[key]

    def embed(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return F.embedding(tokens, self.p["model.embed_tokens.weight"])

    def attn(
        self,
        layer: int,
        x: Float[Tensor, "batch pos d_model"],
        past_kv: tuple[Tensor, Tensor] | None = None,
        return_kv: bool = False,
    ):
        """Self-attention of one block. ``past_kv`` (keys after RoPE, values) of earlier positions lets a
        run recompute only a suffix of the sequence; ``return_kv`` also returns this call's (k, v)."""
        pre = f"model.layers.{layer}.self_attn."
        b, s, _ = x.shape
        off = 0 if past_kv is None else past_kv[0].shape[2]
        q = F.linear(x, self.p[pre + "q_proj.weight"]).view(b, s, self.n_heads, self.d_head).transpose(1, 2)
        k = F.linear(x, self.p[pre + "k_proj.weight"]).view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        v = F.linear(x, self.p[pre + "v_proj.weight"]).view(b, s, self.n_kv, self.d_head).transpose(1, 2)
        cos, sin = self.rope(off + s, x.device)
        cos, sin = cos[off:], sin[off:]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        kv = (k, v)
        gqa = self.n_kv != self.n_heads
        if past_kv is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            k_all, v_all = torch.cat([past_kv[0], k], 2), torch.cat([past_kv[1], v], 2)
            mask = torch.arange(off + s, device=x.device)[None] <= (off + torch.arange(s, device=x.device))[:, None]
            z = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, enable_gqa=gqa)
        out = F.linear(z.transpose(1, 2).reshape(b, s, -1), self.p[pre + "o_proj.weight"])
        return (out, kv) if return_kv else out

    def mlp(self, layer: int, x: Tensor) -> Tensor:
        pre = f"model.layers.{layer}.mlp."
        gate = F.silu(F.linear(x, self.p[pre + "gate_proj.weight"]))
        return F.linear(gate * F.linear(x, self.p[pre + "up_proj.weight"]), self.p[pre + "down_proj.weight"])

    def mlp_half(self, layer: int, mid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """resid_mid -> resid_post: the second half of a block."""
        w = self.p[f"model.layers.{layer}.post_attention_layernorm.weight"]
        return mid + self.mlp(layer, self.rms(mid, w))

    def block(
        self,
        layer: int,
        resid: Float[Tensor, "batch pos d_model"],
        return_parts: bool = False,
        past_kv: tuple[Tensor, Tensor] | None = None,
        return_kv: bool = False,
    ):
        """resid_pre -> resid_post of one block; ``return_parts`` adds (attn_out, mlp_out), ``return_kv`` the
        block's (k, v); ``past_kv`` holds keys/values of earlier positions (see :meth:`attn`)."""
        pre = f"model.layers.{layer}."
        attn_out, kv = self.attn(layer, self.rms(resid, self.p[pre + "input_layernorm.weight"]), past_kv, True)
        mid = resid + attn_out
        mlp_out = self.mlp(layer, self.rms(mid, self.p[pre + "post_attention_layernorm.weight"]))
        out = mid + mlp_out
        res = (out, attn_out, mlp_out) if return_parts else (out,)
        if return_kv:
            res = (*res, kv)
        return res if len(res) > 1 else res[0]

    def unembed(self, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_vocab"]:
        """Final RMSNorm + unembedding (the logit lens on any residual)."""
        return F.linear(self.rms(resid, self.p["model.norm.weight"]), self.p["lm_head.weight"])

    # -- whole runs ---------------------------------------------------------------------------------------
    def walk(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        start: int = 0,
        stop: int | None = None,
        parts: bool = False,
        past_kv: Sequence[tuple[Tensor, Tensor]] | None = None,
    ) -> Iterator[tuple[int, Tensor, Tensor | tuple]]:
        """The one block-by-block loop: yields ``(layer, resid_pre, out)`` for blocks ``start .. stop-1``.

        ``out`` is the block's resid_post, or with ``parts=True`` the tuple (resid_post, attn_out, mlp_out,
        (k, v)). ``past_kv[layer]`` holds keys/values of earlier positions (incremental decoding)."""
        for layer in range(start, self.n_layers if stop is None else stop):
            pk = None if past_kv is None else past_kv[layer]
            if parts:
                out = self.block(layer, resid, return_parts=True, past_kv=pk, return_kv=True)
                yield layer, resid, out
                resid = out[0]
            else:
                new = self.block(layer, resid, past_kv=pk)
                yield layer, resid, new
                resid = new

    def run(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        start: int = 0,
        stop: int | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """Run blocks ``start .. stop-1`` on a residual stream (resid_pre of ``start``)."""
        out = resid
        for _, _, out in self.walk(resid, start, stop):  # noqa: B007 (the last block's output is the result)
            pass
        return out

    def last_logits(
        self, tokens: Int[Tensor, "batch pos"], lengths: Int[Tensor, " batch"] | None = None
    ) -> Float[Tensor, "batch d_vocab"]:
        """Logits at each row's last real token (right-padded batches; causal attention ignores the pads)."""
        resid = self.run(self.embed(tokens))
        idx = (lengths - 1) if lengths is not None else torch.full((tokens.shape[0],), tokens.shape[1] - 1)
        return self.unembed(resid[torch.arange(tokens.shape[0]), idx.to(resid.device)])

    def logits(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
        return self.unembed(self.run(self.embed(tokens)))
