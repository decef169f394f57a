"""The generic path: a :class:`~lftf_interp.models.runner.Runner` for any architecture the bridge boots.

A family without a fast row in :data:`~lftf_interp.models.archs.ARCHS` (or whose config asks for something the
fast forward does not implement) runs on its own Hugging Face modules, found through the TransformerLens
bridge's component mapping (``blocks``, ``attn``, ``mlp``, the post-norms where a family has them):

* ``embed``: the model's own forward up to the input of block 0 (token and position embeddings, scaling);
* ``block``: the decoder layer called with the arguments the model itself passes it (masks, rotary tables,
  position ids), recorded once per sequence length from a forward whose layers are skipped;
* attention / MLP outputs: read, and for patching overwritten, at the output of the module whose output the
  block adds to the residual stream (the post-norm where there is one, else the attention or MLP module), so
  parallel blocks (GPT-NeoX), fused projections (GPT-2, Phi-3) and post-norms (OLMo-2) need no description;
* ``unembed``: the model's own forward after the last block (final norm, head, soft-capping, logit scales).

It is exact by construction and checked: the first runner on a model compares its logits with the model's own
forward and refuses the model (with the difference) if they differ. It is slower than a fast row: no cached
keys and values, and a Python call per hook.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor

from lftf_interp.errors import ConfigError
from lftf_interp.models.archs import ArchSpec, arch_spec, submodule, unwrap
from lftf_interp.models.prefix import active_prefix
from lftf_interp.models.runner import BlockStep, Runner, canonical_state_dict, hf_of, register_path

_CHECKED: weakref.WeakKeyDictionary = (
    weakref.WeakKeyDictionary()
)  # model -> max |logit difference| of its check


class _Stop(Exception):
    def __init__(self, value: Any = None):
        self.value = value


def _first(out: Any) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def _with_first(out: Any, value: Tensor) -> Any:
    return (value, *out[1:]) if isinstance(out, tuple) else value


@contextmanager
def _skipped(layers: Sequence[torch.nn.Module]) -> Iterator[None]:
    """Inside, each layer returns its input unchanged (the model's forward runs everything else)."""

    def identity(*args, **kwargs):
        return args[0] if args else kwargs["hidden_states"]

    for layer in layers:
        layer.forward = identity
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def _called(parent: torch.nn.Module, dotted: str) -> torch.nn.Module:
    """The module ``parent`` calls under ``dotted``: the bridge's component where it replaced the Hugging Face
    module in place (it may recompute attention from its parts without calling the original)."""
    *path, last = dotted.split(".")
    for part in path:
        parent = unwrap(getattr(parent, part))
    return getattr(parent, last)


def _hidden_arg(args: tuple, kwargs: dict) -> Tensor:
    return args[0] if args else kwargs["hidden_states"]


@register_path
class GenericRunner(Runner):
    """:class:`~lftf_interp.models.runner.Runner`'s interface over the model's own modules (see the module doc)."""

    path = "generic"
    supports_past_kv = False

    def __init__(self, model):  # noqa: D107  # a Runner's fields, read from the bridge instead of an ArchSpec
        hf = hf_of(model)
        self.model, self.hf, self.cfg = model, hf, hf.config
        self.arch: ArchSpec = arch_spec(model)
        self.layers = [
            submodule(hf, f"{self.arch.layers}.{i}") for i in range(len(submodule(hf, self.arch.layers)))
        ]
        self.n_layers = len(self.layers)
        tl = getattr(model, "cfg", None)
        self.d_model = int(getattr(tl, "d_model", 0) or hf.get_input_embeddings().weight.shape[1])
        self.n_heads = int(getattr(tl, "n_heads", 0) or getattr(self.cfg, "num_attention_heads", 0))
        self.d_head = int(getattr(tl, "d_head", 0) or self.d_model // max(self.n_heads, 1))
        self.p = canonical_state_dict(model)
        self._calls: dict[tuple, list[tuple[tuple, dict]]] = {}
        self.sites = [self._sites(i) for i in range(self.n_layers)]
        self.prefix = active_prefix(model)
        if model not in _CHECKED:
            _CHECKED[model] = self.check()

    def _sites(self, layer: int) -> dict[str, torch.nn.Module]:
        """The modules whose outputs the block adds to the residual: post-norm if any, else attention / MLP."""
        a = self.arch
        return {
            "attn": _called(self.layers[layer], a.attn_out or a.attn),
            "mlp": _called(self.layers[layer], a.mlp_out or a.mlp),
        }

    # -- recorded layer calls ---------------------------------------------------------------------------
    def _layer_calls(self, n_pos: int, device: torch.device, dtype: torch.dtype) -> list[tuple[tuple, dict]]:
        """The (args after hidden_states, kwargs) the model passes each layer on ``n_pos`` positions."""
        key = (n_pos, str(device), dtype)
        if key not in self._calls:
            calls: list[tuple[tuple, dict]] = []

            def record(mod, args, kwargs):
                calls.append((tuple(args[1:]), dict(kwargs)))

            hooks = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in self.layers]
            try:
                with torch.no_grad(), _skipped(self.layers):
                    x = torch.zeros(1, n_pos, self.d_model, device=device, dtype=dtype)
                    self._forward_body(inputs_embeds=x)
            finally:
                for h in hooks:
                    h.remove()
            if len(calls) != self.n_layers:
                raise ConfigError(
                    f"{self.cfg.model_type}: the model called {len(calls)} of its {self.n_layers} blocks in one "
                    "forward; the generic path cannot drive it block by block."
                )
            self._calls[key] = calls
        return self._calls[key]

    def _forward_body(self, **kw) -> None:
        """The model's forward, stopped after its last block (the head is never computed)."""

        def stop(mod, args, out):
            raise _Stop(_first(out))

        h = self.layers[-1].register_forward_hook(stop)
        try:
            self.hf(use_cache=False, **kw)
        except _Stop:
            pass
        finally:
            h.remove()

    # -- pieces -----------------------------------------------------------------------------------------
    def device_of(self, layer: int) -> torch.device:
        return next(self.layers[layer].parameters()).device

    def embed(self, tokens: Tensor, start: int = 0) -> Tensor:
        """The residual entering block 0, as the model's forward computes it (from position 0: this path keeps no
        keys/values to continue from)."""
        if start:
            raise ConfigError("The generic path recomputes whole sequences: embed from position 0.")

        def grab(mod, args, kwargs):
            raise _Stop(_hidden_arg(args, kwargs))

        h = self.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            self.hf(input_ids=tokens.to(self.device_of(0)), use_cache=False)
        except _Stop as s:
            return s.value
        finally:
            h.remove()
        raise ConfigError(f"{self.cfg.model_type}: the forward never reached block 0.")

    def block(
        self,
        layer: int,
        resid: Tensor,
        return_parts: bool = False,
        past_kv: tuple[Tensor, Tensor] | None = None,
        return_kv: bool = False,
        attn: Tensor | None = None,
        mlp: Tensor | None = None,
    ):
        """resid_pre -> resid_post of one block by its own module; ``attn`` / ``mlp`` overwrite what the attention
        / MLP adds to the residual (patching); ``return_parts`` adds those two outputs as they were added."""
        if past_kv is not None:
            raise ConfigError(
                "The generic path does not take cached keys/values; recompute the whole sequence."
            )
        args, kwargs = self._layer_calls(resid.shape[1], resid.device, resid.dtype)[layer]
        parts: dict[str, Tensor] = {}
        with ExitStack() as stack:
            for name, new in (("attn", attn), ("mlp", mlp)):
                if new is None and not return_parts:
                    continue

                def hook(mod, a, out, name=name, new=new):
                    out = out if new is None else _with_first(out, new.to(_first(out).dtype))
                    parts[name] = _first(out)
                    return out

                stack.callback(self.sites[layer][name].register_forward_hook(hook).remove)
            out = _first(self.layers[layer](resid, *args, **kwargs))
        res: tuple = (out, parts["attn"], parts["mlp"]) if return_parts else (out,)
        if return_kv:
            res = (*res, None)
        return res if len(res) > 1 else res[0]

    def mlp_half(self, layer: int, mid: Tensor, resid_pre: Tensor | None = None) -> Tensor:
        raise ConfigError("The generic path patches attention outputs through block(attn=...), not mlp_half.")

    def unembed(self, resid: Tensor) -> Tensor:
        """Logits of any residual (``[..., d_model]``), by the model's own final norm, head and logit scaling."""
        lead = resid.shape[:-1]
        x = resid.reshape(-1, 1, resid.shape[-1]) if resid.dim() < 3 else resid.reshape(-1, *resid.shape[-2:])

        def inject(mod, args, out):
            return _with_first(out, x.to(_first(out).device))

        dev = self.device_of(self.n_layers - 1)
        h = self.layers[-1].register_forward_hook(inject)
        try:
            with _skipped(self.layers):
                logits = self.hf(inputs_embeds=torch.zeros_like(x, device=dev), use_cache=False).logits
        finally:
            h.remove()
        return logits.reshape(*lead, logits.shape[-1])

    def walk(
        self,
        resid: Tensor,
        start: int = 0,
        stop: int | None = None,
        parts: bool = False,
        past_kv: Sequence[tuple[Tensor, Tensor] | None] | None = None,
    ) -> Iterator[BlockStep]:
        if past_kv is not None:
            raise ConfigError(
                "The generic path does not take cached keys/values; recompute the whole sequence."
            )
        for layer in range(start, self.n_layers if stop is None else stop):
            dev = self.device_of(layer)
            if resid.device != dev:
                resid = resid.to(dev)
            if parts:
                post, attn_out, mlp_out = self.block(layer, resid, return_parts=True)
                yield BlockStep(layer, resid, post, attn_out, mlp_out, None)  # type: ignore[arg-type]
            else:
                post = self.block(layer, resid)
                yield BlockStep(layer, resid, post)
            resid = post

    # -- the check ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def check(self) -> float:
        """Max |logit difference| between this runner and the model's own forward on a short batch; raises if
        it is beyond rounding (the architecture does something between its blocks that the path cannot see)."""
        vocab = self.hf.get_output_embeddings().weight.shape[0]
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(3, min(vocab, 1000), (2, 7), generator=g).to(self.device_of(0))
        ours = self.logits(ids)
        half = ours.dtype != torch.float32
        ours = ours.float()
        theirs = self.hf(input_ids=ids, use_cache=False).logits.float()
        diff = float((ours - theirs).abs().max())
        tol = 1e-3 * max(1.0, float(theirs.abs().max()))  # float32 rounding, relative to the logits' scale
        if half:  # half precision rounds each block
            tol *= 50
        if not diff <= tol:
            raise ConfigError(
                f"{self.cfg.model_type}: driving its blocks one at a time gives logits {diff:.3g} away from its "
                "own forward (the model does something between blocks that the generic path does not see). "
                "It needs a fast row in lftf_interp/models/archs.py; please open an issue with the model's name."
            )
        return diff


@contextmanager
def generic_forward(model) -> Iterator[None]:
    """Inside, ``Runner(model)`` takes the generic path even for a family with a fast row: a cross-check of a
    fast row against the model's own modules, and the generic-vs-fast benchmark."""
    before = getattr(model, "lftf_forward", None)
    model.lftf_forward = "generic"
    try:
        yield
    finally:
        model.lftf_forward = before


def last_block_output(hf: torch.nn.Module, arch: ArchSpec, **inputs) -> Tensor:
    """The residual stream leaving the last block of a Hugging Face model of layout ``arch`` (its forward on
    ``inputs`` stopped there: no final norm, no head)."""
    last = submodule(hf, arch.layers)[-1]

    def stop(mod, args, out):
        raise _Stop(_first(out))

    h = last.register_forward_hook(stop)
    try:
        hf(use_cache=False, **inputs)
    except _Stop as s:
        return s.value
    finally:
        h.remove()
    raise ConfigError(f"{arch.model_type}: the forward never reached its last block.")


def generic_reason(model) -> str | None:
    """Why ``model`` runs on the generic path (None: it has a fast row)."""
    from lftf_interp.models.archs import why_generic

    return why_generic(hf_of(model).config)


__all__ = ["GenericRunner", "generic_forward", "generic_reason", "last_block_output"]
