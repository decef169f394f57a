"""Per-architecture facts as data, and the plain parameter names read from the modules themselves.

A decoder-only model family is one :class:`ArchSpec` row: where its blocks live, which norms (RMSNorm or
LayerNorm) sit around each sub-layer, how its projections are split or fused, whether attention and MLP run in
parallel, how positions enter (rotary, partial rotary or learned), whether queries and keys are normed, whether
embeddings are scaled, which config fields name its activation and attention scale, and whether prompts start
with BOS. The functional :class:`~lftf_interp.models.runner.Runner` reads nothing else, so a family whose block
is built from the same pieces is one entry in :data:`ARCHS` plus its parity case
(``tests/models/test_archs.py``).

A family without a row, or a config asking for something the fast forward does not implement, runs on the
generic path (:mod:`lftf_interp.models.generic`): :func:`why_generic` gives the reason and :func:`arch_spec`
reads the same facts from the TransformerLens bridge's component mapping instead of this table.

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
    pos_embed: str | None = None  # learned absolute position embeddings (GPT-2), added to the token embedding
    final_norm: str | None = "model.norm"
    attn: str = "self_attn"
    mlp: str = "mlp"
    attn_in: str | None = "input_layernorm"  # norm before attention
    attn_out: str | None = None  # norm on the attention output, before the residual add (Gemma's "sandwich")
    mlp_in: str | None = "post_attention_layernorm"  # norm before the MLP
    mlp_out: str | None = None  # norm on the MLP output, before the residual add
    norm: str = "rms"  # "rms": RMSNorm; "layer": LayerNorm with a bias
    eps: str = "rms_norm_eps"  # config field of the norms' epsilon
    qkv: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")  # one fused module: [q | k | v] on its output
    qkv_per_head: bool = False  # the fused output is [q_h | k_h | v_h] per head (GPT-NeoX)
    o: str = "o_proj"
    mlp_in_proj: tuple[str, ...] = ("gate_proj", "up_proj")  # gated: act(gate) · up; one module: act(up)
    gate_up: bool = False  # the one input projection is gated, fused [gate | up] on its output (Phi-3)
    down: str = "down_proj"
    conv1d: bool = False  # weights stored [in, out] (GPT-2's Conv1D)
    parallel: str | None = None  # config field: attention and MLP both read the block input (GPT-NeoX)
    rope: bool = True  # rotary positions (partial_rotary_factor from the config)
    qk_norm: str | None = None  # RMSNorm on queries and keys before RoPE: per "head", or over "all" heads
    norm_offset: float = 0.0  # RMSNorm multiplies by (norm_offset + weight); Gemma stores weight - 1
    embed_scale: bool = False  # embeddings multiplied by sqrt(d_model)
    act: str = "hidden_act"  # config field naming the MLP's activation
    attn_scale: str | None = None  # config field s: softmax scale is s ** -0.5 (default: head_dim ** -0.5)
    bos: bool | None = False  # prepend the tokenizer's BOS to every prompt (None: as the tokenizer does)
    window_all: bool = False  # config.sliding_window applies to every layer (Mistral), not per layer type
    head: str = "lm_head"  # the unembedding module
    fast: bool = True  # False: read from the bridge, run by the generic path

    @property
    def trainable(self) -> tuple[str, str]:
        """The sub-modules of a block that LFTF trains: attention and MLP (q/k norms and biases included)."""
        return (self.attn, self.mlp)

    @property
    def separate_units(self) -> bool:
        """Separate q/k/v/o and gate/up/down projections around RMSNorms: heads and neurons are weight slices
        (what :mod:`lftf_interp.probes.mechanism` needs)."""
        return (
            self.fast
            and len(self.qkv) == 3
            and len(self.mlp_in_proj) == 2
            and not self.conv1d
            and self.norm == "rms"
            and self.parallel is None
            and self.qk_norm != "all"
        )

    def to_dict(self) -> dict:
        return asdict(self)


_GEMMA = dict(
    attn_out="post_attention_layernorm",
    mlp_in="pre_feedforward_layernorm",
    mlp_out="post_feedforward_layernorm",
    norm_offset=1.0,
    embed_scale=True,
    act="hidden_activation",
    attn_scale="query_pre_attn_scalar",
    bos=True,
)
ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", "LlamaForCausalLM"),
    "qwen2": ArchSpec("qwen2", "Qwen2ForCausalLM"),
    "mistral": ArchSpec("mistral", "MistralForCausalLM", window_all=True, bos=True),
    "qwen3": ArchSpec("qwen3", "Qwen3ForCausalLM", qk_norm="head"),
    "gemma3_text": ArchSpec("gemma3_text", "Gemma3ForCausalLM", qk_norm="head", **_GEMMA),  # type: ignore[arg-type]
    "gemma2": ArchSpec("gemma2", "Gemma2ForCausalLM", **_GEMMA),  # type: ignore[arg-type]
    "olmo2": ArchSpec(
        "olmo2",
        "Olmo2ForCausalLM",
        attn_in=None,
        attn_out="post_attention_layernorm",
        mlp_in=None,
        mlp_out="post_feedforward_layernorm",
        qk_norm="all",
        bos=None,
    ),
    "phi3": ArchSpec(
        "phi3",
        "Phi3ForCausalLM",
        qkv=("qkv_proj",),
        mlp_in_proj=("gate_up_proj",),
        gate_up=True,
        window_all=True,
        bos=None,
    ),
    "gpt2": ArchSpec(
        "gpt2",
        "GPT2LMHeadModel",
        layers="transformer.h",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        final_norm="transformer.ln_f",
        attn="attn",
        attn_in="ln_1",
        mlp_in="ln_2",
        norm="layer",
        eps="layer_norm_epsilon",
        qkv=("c_attn",),
        o="c_proj",
        mlp_in_proj=("c_fc",),
        down="c_proj",
        conv1d=True,
        rope=False,
        act="activation_function",
        bos=None,
    ),
    "gpt_neox": ArchSpec(
        "gpt_neox",
        "GPTNeoXForCausalLM",
        layers="gpt_neox.layers",
        embed="gpt_neox.embed_in",
        final_norm="gpt_neox.final_layer_norm",
        attn="attention",
        norm="layer",
        eps="layer_norm_eps",
        qkv=("query_key_value",),
        qkv_per_head=True,
        o="dense",
        mlp_in_proj=("dense_h_to_4h",),
        down="dense_4h_to_h",
        parallel="use_parallel_residual",
        head="embed_out",
        bos=None,
    ),
}

# config field -> values the fast forward implements (anything else runs on the generic path, with the reason)
_ROPE_TYPES = {"default", "linear", "llama3", "yarn"}  # position-independent inverse frequencies
_MUST_BE = {
    "use_bidirectional_attention": (None, False),
    "reorder_and_upcast_attn": (None, False),  # GPT-2: attention scores upcast in a half-precision model
    "add_cross_attention": (None, False),
}


def arch_of(config) -> ArchSpec:
    """The fast row of a Hugging Face config; a family without one is refused here (see :func:`arch_spec`)."""
    mt = getattr(config, "model_type", None)
    if mt not in ARCHS:
        raise UnknownModelError(
            f"Architecture {mt!r} has no fast row (rows: {', '.join(sorted(ARCHS))}); it runs on the generic path."
        )
    return ARCHS[mt]


def _rope_dicts(config) -> list[dict]:
    rp = getattr(config, "rope_parameters", None) or {}
    if rp and all(isinstance(v, dict) or v is None for v in rp.values()):  # per layer type (Gemma-3)
        return [v for v in rp.values() if v]
    return [rp]


def why_generic(config) -> str | None:
    """Why a config runs on the generic path, or None when its fast row implements all of it."""
    mt = getattr(config, "model_type", None)
    if mt not in ARCHS:
        return f"no fast row for model_type {mt!r}"
    for key, ok in _MUST_BE.items():
        val = getattr(config, key, None)
        if val not in ok:
            return f"{key}={val!r} is not implemented by the fast forward (it supports {ok})"
    if not ARCHS[mt].rope:
        return None
    for rp in _rope_dicts(config):
        rt = rp.get("rope_type", "default")
        if rt not in _ROPE_TYPES:
            return (
                f"rope_type={rt!r} is not implemented by the fast forward (it supports {sorted(_ROPE_TYPES)}; "
                "types whose frequencies depend on the sequence length are not)"
            )
    return None


def check_config(config) -> ArchSpec:
    """The fast row of a config the fast forward implements entirely; otherwise ConfigError with the reason."""
    if (why := why_generic(config)) is not None:
        raise ConfigError(f"{getattr(config, 'model_type', None)}: {why}.")
    return ARCHS[config.model_type]


def arch_spec(model) -> ArchSpec:
    """The block layout of ``model`` (a bridge or a Hugging Face model): its fast row, or for the generic path
    the names the TransformerLens bridge maps (blocks, attention, MLP, norms, head), with ``fast=False``."""
    hf = getattr(model, "original_model", model)
    cfg = hf.config
    if why_generic(cfg) is None:
        return ARCHS[cfg.model_type]
    adapter = getattr(model, "adapter", None)
    if adapter is None:
        raise ConfigError(
            f"{cfg.model_type} runs on the generic path, which reads the block layout from a TransformerLens "
            "bridge: load it with lftf_interp.load_model (or wrap it with models.loading.bridge_from_hf)."
        )
    cm = adapter.component_mapping
    sub = cm["blocks"].submodules

    def name(key: str) -> str | None:
        return sub[key].name if key in sub else None

    attn, mlp = name("attn"), name("mlp")
    if attn is None or mlp is None:
        raise ConfigError(f"{cfg.model_type}: the bridge maps no attention or MLP module in its blocks.")
    return ArchSpec(
        model_type=cfg.model_type,
        hf_class=(getattr(cfg, "architectures", None) or [type(hf).__name__])[0],
        layers=cm["blocks"].name,
        embed=cm["embed"].name,
        final_norm=cm["ln_final"].name if "ln_final" in cm else None,
        attn=attn,
        mlp=mlp,
        attn_in=name("ln1"),
        attn_out=name("ln1_post"),
        mlp_in=name("ln2"),
        mlp_out=name("ln2_post"),
        head=cm["unembed"].name if "unembed" in cm else "lm_head",
        fast=False,
    )


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


def plain_named_modules(module: Any, prefix: str = "") -> Iterator[tuple[str, torch.nn.Module]]:
    """``(name, module)`` of the Hugging Face module tree under ``module`` (bridge components unwrapped)."""
    module = unwrap(module)
    yield prefix.removesuffix("."), module
    for name, child in module.named_children():
        if name != "_original_component":
            yield from plain_named_modules(child, f"{prefix}{name}.")


def submodule(root: Any, dotted: str) -> Any:
    """``root.a.b`` for ``"a.b"``, following bridge components to their Hugging Face modules."""
    mod = unwrap(root)
    for part in dotted.split("."):
        mod = unwrap(mod[int(part)] if part.isdigit() else getattr(mod, part))
    return mod


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


__all__ = [
    "ARCHS",
    "ArchSpec",
    "arch_of",
    "arch_spec",
    "block_param_names",
    "canonical_state_dict",
    "check_config",
    "hf_of",
    "plain_named_modules",
    "plain_named_parameters",
    "submodule",
    "unwrap",
    "why_generic",
]
