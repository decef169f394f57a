"""Per-architecture facts as data, and the plain parameter names read from the modules themselves.

A decoder-only model family is one :class:`ArchSpec` row: where its blocks live, which norms sit around each
sub-layer, how its RMSNorm scales, whether queries and keys are normed, whether embeddings are scaled, which
config field names its activation and its attention scale, and whether prompts start with BOS. The functional
:class:`~lftf_interp.models.runner.Runner` reads nothing else, so a fourth family whose block is built from the same
pieces is one entry in :data:`ARCHS` plus its parity test (``tests/test_archs.py``).

Config fields the runner does not implement are refused by :func:`check_config` with the reason, never ignored.

Parameter names never come from a name pattern: :func:`plain_named_parameters` walks the module tree (under a
TransformerLens bridge it follows each component's ``_original_component`` and skips the bridge's aliases), so
a family's biases, q/k norms or extra norms are all kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lftf_interp.errors import ConfigError, UnknownModelError


@dataclass(frozen=True)
class ArchSpec:
    """How one family's decoder block is built (the names are those of its Hugging Face modules)."""

    model_type: str  # the Hugging Face config's model_type
    hf_class: str  # the ...ForCausalLM class (written into exported configs' ``architectures``)
    layers: str = "model.layers"  # the blocks' ModuleList
    embed: str = "model.embed_tokens"
    final_norm: str = "model.norm"
    attn: str = "self_attn"
    mlp: str = "mlp"
    attn_in: str = "input_layernorm"  # norm before attention
    attn_out: str | None = None  # norm on the attention output, before the residual add (Gemma's "sandwich")
    mlp_in: str = "post_attention_layernorm"  # norm before the MLP
    mlp_out: str | None = None  # norm on the MLP output, before the residual add
    qk_norm: bool = False  # RMSNorm over each head's queries and keys before RoPE
    norm_offset: float = 0.0  # RMSNorm multiplies by (norm_offset + weight); Gemma stores weight - 1
    embed_scale: bool = False  # embeddings multiplied by sqrt(d_model)
    act: str = "hidden_act"  # config field naming the MLP's gate activation
    attn_scale: str | None = None  # config field s: softmax scale is s ** -0.5 (default: head_dim ** -0.5)
    bos: bool = False  # prepend the tokenizer's BOS to every prompt

    @property
    def trainable(self) -> tuple[str, str]:
        """The sub-modules of a block that LFTF trains: attention and MLP (q/k norms and biases included)."""
        return (self.attn, self.mlp)

    def to_dict(self) -> dict:
        return asdict(self)


ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", "LlamaForCausalLM"),
    "qwen2": ArchSpec("qwen2", "Qwen2ForCausalLM"),
    "gemma3_text": ArchSpec(
        "gemma3_text",
        "Gemma3ForCausalLM",
        attn_out="post_attention_layernorm",
        mlp_in="pre_feedforward_layernorm",
        mlp_out="post_feedforward_layernorm",
        qk_norm=True,
        norm_offset=1.0,
        embed_scale=True,
        act="hidden_activation",
        attn_scale="query_pre_attn_scalar",
        bos=True,
    ),
}

# config field -> values the runner implements (anything else is refused, with the reason)
_ROPE_TYPES = {"default", "linear", "llama3", "yarn"}  # position-independent inverse frequencies
_MUST_BE = {
    "attn_logit_softcapping": (None,),
    "final_logit_softcapping": (None,),
    "use_bidirectional_attention": (None, False),
    "partial_rotary_factor": (None, 1.0),
}


def arch_of(config) -> ArchSpec:
    """The :class:`ArchSpec` of a Hugging Face config; unknown families are refused with what to do."""
    mt = getattr(config, "model_type", None)
    if mt not in ARCHS:
        raise UnknownModelError(
            f"Architecture {mt!r} is not supported: lftf runs {', '.join(sorted(ARCHS))}. A family whose block is "
            "built from RMSNorms, rotary attention and a gated MLP is one ArchSpec entry in lftf_interp/archs.py "
            "(plus a parity test against Hugging Face in tests/test_archs.py)."
        )
    return ARCHS[mt]


def _rope_dicts(config) -> list[dict]:
    rp = getattr(config, "rope_parameters", None) or {}
    if rp and all(isinstance(v, dict) or v is None for v in rp.values()):  # per layer type (Gemma-3)
        return [v for v in rp.values() if v]
    return [rp]


def check_config(config) -> ArchSpec:
    """Refuse config fields the runner does not implement (a clear error, never a silent mismatch)."""
    arch = arch_of(config)
    for key, ok in _MUST_BE.items():
        val = getattr(config, key, None)
        if val not in ok:
            raise ConfigError(
                f"{arch.model_type} config has {key}={val!r}, which lftf's runner does not implement "
                f"(it supports {ok}). Please open an issue with the model's name."
            )
    for rp in _rope_dicts(config):
        if rp.get("partial_rotary_factor", 1.0) != 1.0:
            raise ConfigError(
                f"partial_rotary_factor={rp['partial_rotary_factor']} is not implemented by lftf's runner."
            )
        rt = rp.get("rope_type", "default")
        if rt not in _ROPE_TYPES:
            raise ConfigError(
                f"rope_type={rt!r} is not implemented by lftf's runner (it supports {sorted(_ROPE_TYPES)}; "
                "types whose frequencies depend on the sequence length, such as 'dynamic' or 'longrope', are not)."
            )
    return arch


def unwrap(module: Any) -> Any:
    """The Hugging Face module under a TransformerLens bridge component (or the module itself)."""
    while getattr(module, "_original_component", None) is not None:
        module = module._original_component
    return module


def plain_named_parameters(
    module: torch.nn.Module, prefix: str = ""
) -> Iterator[tuple[str, torch.nn.Parameter]]:
    """``(name, parameter)`` under plain Hugging Face names, read from the module tree (shared, not copied).

    A bridge component contributes only its ``_original_component`` (its TransformerLens aliases such as
    ``attn.q`` are views of the same tensors). Tied weights appear under each of their names."""
    module = unwrap(module)
    for name, p in module.named_parameters(recurse=False):
        yield prefix + name, p
    for name, child in module.named_children():
        yield from plain_named_parameters(child, f"{prefix}{name}.")


def submodule(root: Any, dotted: str) -> Any:
    """``root.a.b`` for ``"a.b"``, following bridge components to their Hugging Face modules."""
    mod = unwrap(root)
    for part in dotted.split("."):
        mod = unwrap(mod[int(part)] if part.isdigit() else getattr(mod, part))
    return mod


__all__ = ["ARCHS", "ArchSpec", "arch_of", "check_config", "plain_named_parameters", "submodule", "unwrap"]
