"""Models: the registry of supported checkpoints, loading them as TransformerLens bridges, the per-architecture
facts (:mod:`.archs`), the batched forward runner, device placement and tokenisation."""

from lftf_interp.models.archs import ARCHS, ArchSpec, arch_of, arch_spec, why_generic
from lftf_interp.models.generic import GenericRunner  # registers the generic path
from lftf_interp.models.loading import (
    MODEL_REGISTRY,
    ModelSpec,
    export_hf,
    hf_model,
    load_hf,
    load_model,
    load_tokenizer,
    resolve_model_dir,
    tiny_model,
)
from lftf_interp.models.placement import Placement, placement
from lftf_interp.models.runner import Runner

__all__ = [
    "ARCHS",
    "MODEL_REGISTRY",
    "ArchSpec",
    "GenericRunner",
    "ModelSpec",
    "Placement",
    "Runner",
    "arch_of",
    "arch_spec",
    "export_hf",
    "hf_model",
    "load_hf",
    "load_model",
    "load_tokenizer",
    "placement",
    "resolve_model_dir",
    "tiny_model",
    "why_generic",
]
