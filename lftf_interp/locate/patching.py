"""Batched activation patching and attribution patching over blocks × positions.

Semantics follow ``transformer_lens.patching``: run the *corrupted* prompts, overwrite one activation
(``resid_pre`` / ``attn_out`` / ``mlp_out`` of block L at position p) with its value on the *clean* prompts,
and score the logits with a metric callable. One generic :func:`patch_sweep`; the named variants are
``functools.partial`` s of it.

Speed: every patched run starts at the patched block from cached corrupted activations (earlier blocks are
never recomputed), many patched runs share one forward pass, and only the last position is unembedded.
tests/locate/test_patching.py checks equality with ``transformer_lens.patching`` (max abs diff <= 1e-4).

Pairs must have the same token length (positions are compared one to one). The explicit rule: with
``align="error"`` (default) a pair whose lengths differ raises, naming the pair; with ``align="drop"``
such pairs are dropped and counted in ``pairs.n_dropped``.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..data.build import HINTS, TEMPLATES
from ..data.datasets import load_frame
from ..errors import LftfError
from ..runner import LlamaRunner
from ..tokens import encode, single_token_id

SITES = ("resid_pre", "attn_out", "mlp_out")
TL_HOOK = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}
Metric = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- pairs


@dataclass
class PatchPairs:
    """Clean / corrupted prompt pairs of one common token length."""

    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]
    df: pd.DataFrame
    str_tokens: list[str] = field(default_factory=list)
    n_dropped: int = 0

    @property
    def n_pos(self) -> int:
        return self.clean.shape[1]

    def __len__(self) -> int:
        return self.clean.shape[0]


def make_pairs(
    model, clean_prompts: Sequence[str], corrupted_prompts: Sequence[str], meta: pd.DataFrame | None = None,
    align: str = "error",
) -> PatchPairs:
    """Tokenise pairs (no BOS). Lengths must match pairwise and across pairs; see the module doc for ``align``."""
    if align not in ("error", "drop"):
        raise ValueError(f"align must be 'error' or 'drop', got {align!r}")
    if len(clean_prompts) != len(corrupted_prompts):
        raise LftfError(f"{len(clean_prompts)} clean prompts but {len(corrupted_prompts)} corrupted ones.")
    keep, clean, corr, dropped = [], [], [], 0
    for i, (c, k) in enumerate(zip(clean_prompts, corrupted_prompts, strict=True)):
        a, b = encode(model, c), encode(model, k)
        if len(a) != len(b):
            if align == "error":
                raise LftfError(
                    f"Pair {i}: clean prompt {c!r} is {len(a)} tokens but corrupted {k!r} is {len(b)}. Patching "
                    "compares positions one to one: use words of equal token length, or align='drop' to skip "
                    "such pairs."
                )
            dropped += 1
            continue
        keep.append(i)
        clean.append(a)
        corr.append(b)
    if not keep:
        raise LftfError("No clean/corrupted pair of equal token length is left; nothing to patch.")
    lengths = {len(a) for a in clean}
    if len(lengths) > 1:
        raise LftfError(
            f"Pairs have different lengths {sorted(lengths)}; a sweep batches pairs of one length. Group them "
            "first (e.g. by template), or pass one pair at a time."
        )
    df = (meta.iloc[keep].reset_index(drop=True) if meta is not None else pd.DataFrame(index=range(len(keep)))).copy()
    df["clean_prompt"] = [clean_prompts[i] for i in keep]
    df["corrupted_prompt"] = [corrupted_prompts[i] for i in keep]
    tok = model.tokenizer
    return PatchPairs(
        torch.tensor(clean), torch.tensor(corr), df, [tok.decode([t]) for t in clean[0]], n_dropped=dropped
    )


def _largest_length_group(model, clean, corrupted, meta, n, seed) -> PatchPairs:
    lens = pd.Series([len(encode(model, c)) for c in clean])
    same = [len(encode(model, k)) for k in corrupted]
    ok = lens == pd.Series(same)
    mode = lens[ok].mode().iloc[0]
    idx = [i for i in range(len(clean)) if ok[i] and lens[i] == mode]
    random.Random(seed).shuffle(idx)
    idx = sorted(idx[:n])
    return make_pairs(model, [clean[i] for i in idx], [corrupted[i] for i in idx], meta.iloc[idx])


def hint_swap_pairs(
    model, split: str = "test", hint_kind: str = "noun", template_id: int | None = None, n: int = 16, seed: int = 0
) -> PatchPairs:
    """"The X is a man. <template>" (clean, he) vs "... a woman. ..." (corrupted, she); same template.

    One hint kind and one template (default: the split's first), occupations of the modal token length.
    """
    kinds = {k: (m, f) for k, m, f in HINTS}
    if hint_kind not in kinds or hint_kind == "name":
        raise LftfError(f"hint_kind must be one of {[k for k in kinds if k != 'name']}, got {hint_kind!r}.")
    df = load_frame("genbias")
    df = df[df.split == split]
    if df.empty:
        raise LftfError(f"No GenBiasEval prompts in split {split!r}.")
    template_id = int(sorted(df.template_id.unique())[0]) if template_id is None else template_id
    occs = sorted(df[df.template_id == template_id].occupation.unique())
    if not occs:
        raise LftfError(f"Template {template_id} is not in split {split!r}.")
    male, female = kinds[hint_kind]
    tpl = TEMPLATES[template_id]
    clean = [male.format(occupation=o) + " " + tpl.format(occupation=o) for o in occs]
    corr = [female.format(occupation=o) + " " + tpl.format(occupation=o) for o in occs]
    meta = pd.DataFrame({"occupation": occs, "template_id": template_id, "hint_kind": hint_kind, "pair": "hint_swap"})
    return _largest_length_group(model, clean, corr, meta, n, seed)


def stereotype_swap_pairs(model, split: str = "test", template_id: int | None = None, n: int = 16, seed: int = 0) -> PatchPairs:
    """Same template, a male-stereotyped occupation (clean) vs a female-stereotyped one (corrupted)."""
    df = load_frame("genbias")
    df = df[(df.split == split) & df.stereotype.isin(["male", "female"])]
    template_id = int(sorted(df.template_id.unique())[0]) if template_id is None else template_id
    d = df[df.template_id == template_id]
    tpl = TEMPLATES[template_id]
    rng = random.Random(seed)
    by_len: dict[tuple[str, int], list[str]] = {}
    for o, s in zip(d.occupation, d.stereotype, strict=True):
        by_len.setdefault((s, len(encode(model, tpl.format(occupation=o)))), []).append(o)
    clean, corr, rows = [], [], []
    for (s, length), males in sorted(by_len.items()):
        if s != "male":
            continue
        females = by_len.get(("female", length), [])
        rng.shuffle(males)
        rng.shuffle(females)
        for m, f in zip(males, females, strict=False):
            clean.append(tpl.format(occupation=m))
            corr.append(tpl.format(occupation=f))
            rows.append({"clean_occupation": m, "corrupted_occupation": f, "template_id": template_id, "pair": "stereotype_swap"})
    if not clean:
        raise LftfError(f"No male/female occupation pair of equal token length for template {template_id}.")
    return _largest_length_group(model, clean, corr, pd.DataFrame(rows), n, seed)


# ----------------------------------------------------------------------------- metrics


def logit_diff(he_id: int, she_id: int) -> Metric:
    """Mean over the batch of logit(he) - logit(she) at the last position."""

    def metric(logits: Tensor) -> Tensor:
        last = logits[:, -1] if logits.ndim == 3 else logits
        return (last[:, he_id] - last[:, she_id]).mean()

    return metric


def normalized_logit_diff(he_id: int, she_id: int, clean_value: float, corrupted_value: float) -> Metric:
    """(LD - LD_corrupted) / (LD_clean - LD_corrupted): 1 = clean behaviour, 0 = corrupted behaviour."""
    if abs(clean_value - corrupted_value) < 1e-8:
        raise LftfError("Clean and corrupted prompts give the same logit difference; the metric cannot be normalised.")
    base = logit_diff(he_id, she_id)

    def metric(logits: Tensor) -> Tensor:
        return (base(logits) - corrupted_value) / (clean_value - corrupted_value)

    return metric


@torch.no_grad()
def pair_metric(model, pairs: PatchPairs, male: str = " he", female: str = " she") -> tuple[Metric, float, float]:
    """The normalised he-she logit-difference metric for these pairs, and the clean / corrupted values."""
    he, she = single_token_id(model, male), single_token_id(model, female)
    runner = LlamaRunner(model)
    ld = logit_diff(he, she)
    clean = float(ld(runner.unembed(runner.run(runner.embed(pairs.clean))[:, -1])))
    corr = float(ld(runner.unembed(runner.run(runner.embed(pairs.corrupted))[:, -1])))
    return normalized_logit_diff(he, she, clean, corr), clean, corr


# ----------------------------------------------------------------------------- engine


def check_site(site: str) -> str:
    if site not in SITES:
        close = difflib.get_close_matches(site, SITES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise LftfError(f"Unknown patching site {site!r}; choose one of {list(SITES)}.{hint}")
    return site


def check_hook_name(model, name: str) -> str:
    """Raise a clear error for a TransformerLens hook name the model does not have."""
    names = set(model.hook_dict)
    if name not in names:
        close = difflib.get_close_matches(name, sorted(names), n=3)
        raise LftfError(f"Hook {name!r} does not exist on this model. Closest: {close}. Hook names look like "
                        "'blocks.3.hook_resid_pre'.")
    return name


@torch.no_grad()
def _acts(runner: LlamaRunner, tokens: Tensor) -> dict[str, list]:
    """Every block's residual stream, attention / MLP outputs and (k, v), for one batch of prompts."""
    acts: dict[str, list] = {k: [] for k in ("resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post", "kv")}
    resid = runner.embed(tokens)
    for layer in range(runner.n_layers):
        out, attn_out, mlp_out, kv = runner.block(layer, resid, return_parts=True, return_kv=True)
        for k, v in (("resid_pre", resid), ("resid_mid", resid + attn_out), ("attn_out", attn_out),
                     ("mlp_out", mlp_out), ("resid_post", out), ("kv", kv)):
            acts[k].append(v)
        resid = out
    return acts


def _site_acts(site: str, layer: int, clean: dict, corr: dict) -> tuple[Tensor, Tensor]:
    """(corrupted residual where ``site`` of ``layer`` enters, the same residual with ``site`` from clean)."""
    if site == "resid_pre":
        return corr["resid_pre"][layer], clean["resid_pre"][layer]
    if site == "attn_out":
        return corr["resid_mid"][layer], corr["resid_pre"][layer] + clean["attn_out"][layer]
    return corr["resid_post"][layer], corr["resid_mid"][layer] + clean["mlp_out"][layer]


def _variant(site: str, layer: int, clean: dict, corr: dict, p: int | None) -> Tensor:
    """That residual patched at position ``p`` (suffix p: only, since earlier positions are unchanged) or at
    every position (p None)."""
    base, new = _site_acts(site, layer, clean, corr)
    if p is None:
        return new
    out = base[:, p:].clone()
    out[:, 0] = new[:, p]
    return out


def _is_noop(site: str, layer: int, clean: dict, corr: dict, p: int | None) -> bool:
    """A patch that writes the value already there (e.g. a shared prompt prefix) is the corrupted run itself."""
    base, new = _site_acts(site, layer, clean, corr)
    return torch.equal(base, new) if p is None else torch.equal(base[:, p], new[:, p])


def _wavefront(runner: LlamaRunner, site: str, layers: set[int], clean: dict, corr: dict, p: int | None) -> Tensor:
    """Logits [n_variants, batch, vocab] of the runs patched at position p of each layer in ``layers``.

    One pass over the blocks: the variant patched at layer L joins the batch when the pass reaches L, so
    no block before L is recomputed for it; positions before p reuse the corrupted run's keys/values.
    """
    start = 0 if p is None else p
    x: Tensor | None = None
    n_var = 0
    for layer in range(runner.n_layers):
        if site == "resid_pre" and layer in layers:
            new = _variant(site, layer, clean, corr, p)
            x, n_var = (new if x is None else torch.cat([x, new])), n_var + 1
        if x is not None:
            past = None
            if start > 0:
                past = tuple(t[:, :, :start].repeat(n_var, 1, 1, 1) for t in corr["kv"][layer])
            x = runner.block(layer, x, past_kv=past)
        if site == "attn_out" and layer in layers:
            new = runner.mlp_half(layer, _variant(site, layer, clean, corr, p))
            x, n_var = (new if x is None else torch.cat([x, new])), n_var + 1
        if site == "mlp_out" and layer in layers:
            new = _variant(site, layer, clean, corr, p)
            x, n_var = (new if x is None else torch.cat([x, new])), n_var + 1
    logits = runner.unembed(x[:, -1])
    return logits.view(n_var, -1, logits.shape[-1])


@torch.no_grad()
def patch_sweep(
    model,
    pairs: PatchPairs,
    metric: Metric,
    site: str = "resid_pre",
    per_position: bool = True,
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    batch_size: int = 16,
    skip_noops: bool = True,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Patch clean ``site`` activations into corrupted runs, per block × position (or per block).

    ``batch_size`` is the number of pairs run together. ``skip_noops``: a patch whose clean and corrupted
    values are bit-identical in every pair (a shared prompt prefix) is not rerun; its value is the
    corrupted run's, which is what rerunning gives. Returns a tidy DataFrame: site, layer,
    pos (-1 = all positions), token, value.
    """
    check_site(site)
    runner = LlamaRunner(model)
    n_layers, n_pos = runner.n_layers, pairs.n_pos
    layers = list(range(n_layers)) if layers is None else sorted(set(layers))
    bad = [L for L in layers if not 0 <= L < n_layers]
    if bad:
        raise LftfError(f"Layer(s) {bad} out of range: this model has blocks 0..{n_layers - 1}.")
    if per_position:
        positions = list(range(n_pos)) if positions is None else list(positions)
        badp = [p for p in positions if not -n_pos <= p < n_pos]
        if badp:
            raise LftfError(f"Position(s) {badp} out of range: these pairs have {n_pos} tokens (0..{n_pos - 1}).")
        positions = [p % n_pos for p in positions]
    else:
        positions = [None]
    chunks = [slice(s, s + batch_size) for s in range(0, len(pairs), batch_size)]
    acts = [(_acts(runner, pairs.clean[c]), _acts(runner, pairs.corrupted[c])) for c in chunks]
    corrupted_logits = torch.cat([runner.unembed(co["resid_post"][-1][:, -1]) for _, co in acts])
    rows = []
    for p in positions:
        # skip patches that change nothing in every pair: their value is the corrupted run's (exact, not approx.)
        todo = [L for L in layers if not (skip_noops and all(_is_noop(site, L, cl, co, p) for cl, co in acts))]
        out = {L: corrupted_logits for L in layers}
        if todo:
            logits = torch.cat([_wavefront(runner, site, set(todo), cl, co, p) for cl, co in acts], dim=1)
            out.update(zip(todo, logits, strict=True))
        for layer in layers:
            lg = out[layer]
            pos = -1 if p is None else p
            token = "*" if p is None else pairs.str_tokens[p]
            rows.append({"site": site, "layer": layer, "pos": pos, "token": token, "value": float(metric(lg[:, None]))})
        if progress:
            progress(1)
    return pd.DataFrame(rows).sort_values(["layer", "pos"], ignore_index=True)


patch_resid_pre = partial(patch_sweep, site="resid_pre", per_position=True)
patch_attn_out = partial(patch_sweep, site="attn_out", per_position=True)
patch_mlp_out = partial(patch_sweep, site="mlp_out", per_position=True)
patch_resid_pre_by_block = partial(patch_sweep, site="resid_pre", per_position=False)
patch_attn_out_by_block = partial(patch_sweep, site="attn_out", per_position=False)
patch_mlp_out_by_block = partial(patch_sweep, site="mlp_out", per_position=False)


def patch_every(model, pairs: PatchPairs, metric: Metric, per_position: bool = True, **kw) -> pd.DataFrame:
    """All three sites in one tidy frame."""
    return pd.concat([patch_sweep(model, pairs, metric, s, per_position, **kw) for s in SITES], ignore_index=True)


def as_grid(df: pd.DataFrame) -> pd.DataFrame:
    """layer × pos table of one site's values (for heatmaps and comparisons)."""
    return df.pivot(index="layer", columns="pos", values="value")


# ----------------------------------------------------------------------------- reference (TransformerLens)


def tl_patch(model, pairs: PatchPairs, metric: Metric, site: str = "resid_pre") -> Float[Tensor, "layer pos"]:
    """The same sweep with ``transformer_lens.patching`` (one hooked forward per layer × position)."""
    from transformer_lens import patching

    check_site(site)
    fn = {"resid_pre": patching.get_act_patch_resid_pre, "attn_out": patching.get_act_patch_attn_out,
          "mlp_out": patching.get_act_patch_mlp_out}[site]
    with torch.no_grad():
        _, cache = model.run_with_cache(pairs.clean)
        return fn(model, pairs.corrupted, cache, metric)


# ----------------------------------------------------------------------------- attribution patching


def attribution_patch(
    model, pairs: PatchPairs, male: str = " he", female: str = " she", per_position: bool = True
) -> pd.DataFrame:
    """Linear (gradient) estimate of every patch of :func:`patch_sweep` at once: 2 forwards + 1 backward.

    value(L, p) ≈ [(a_clean - a_corrupted)[L, p] · ∂LD/∂a at the corrupted run] / (LD_clean - LD_corrupted),
    the first-order Taylor estimate of the normalised metric (Nanda 2023, "Attribution patching").
    """
    he, she = single_token_id(model, male), single_token_id(model, female)
    runner = LlamaRunner(model)
    clean = _acts(runner, pairs.clean)
    ld = logit_diff(he, she)
    with torch.enable_grad():
        resid = runner.embed(pairs.corrupted).detach().requires_grad_(True)
        acts: dict[str, list[Tensor]] = {s: [] for s in SITES}
        for layer in range(runner.n_layers):
            acts["resid_pre"].append(resid)
            out, attn_out, mlp_out = runner.block(layer, resid, return_parts=True)
            acts["attn_out"].append(attn_out)
            acts["mlp_out"].append(mlp_out)
            resid = out
        value = ld(runner.unembed(resid[:, -1]))
        flat = [t for s in SITES for t in acts[s]]
        grads = torch.autograd.grad(value, flat)
    ld_corr = float(value.detach())
    with torch.no_grad():
        ld_clean = float(ld(runner.unembed(clean["resid_post"][-1][:, -1])))
    denom = ld_clean - ld_corr
    rows, i = [], 0
    for site in SITES:
        for layer in range(runner.n_layers):
            delta = clean[site][layer] - acts[site][layer].detach()
            contrib = (delta * grads[i]).sum(-1).sum(0) / denom  # [pos]
            i += 1
            if per_position:
                for p, v in enumerate(contrib.tolist()):
                    rows.append({"site": site, "layer": layer, "pos": p, "token": pairs.str_tokens[p], "value": v})
            else:
                rows.append({"site": site, "layer": layer, "pos": -1, "token": "*", "value": float(contrib.sum())})
    return pd.DataFrame(rows)
