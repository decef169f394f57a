"""Batched activation patching over blocks × positions.

Semantics follow ``transformer_lens.patching``: run the *corrupted* prompts, overwrite one activation
(``resid_pre`` / ``attn_out`` / ``mlp_out`` of block L at position p) with its value on the *clean* prompts,
and score the logits with a metric callable. One generic :func:`patch_sweep`; the named variants are
``functools.partial`` s of it. Pairs come from :mod:`.pairs`; :mod:`.reference` runs the same sweep with
``transformer_lens.patching`` and tests/locate/test_patching.py checks the two agree (max abs diff <= 1e-4).

Speed: every patched run starts at the patched block from cached corrupted activations (earlier blocks are
never recomputed), many patched runs share one forward pass, and only the last position is unembedded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import pandas as pd
import torch
from torch import Tensor

from lftf_interp.errors import LftfError
from lftf_interp.locate.pairs import Metric, PatchPairs
from lftf_interp.models.runner import Runner

SITES = ("resid_pre", "attn_out", "mlp_out")


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
        raise LftfError(
            f"Hook {name!r} does not exist on this model. Closest: {close}. Hook names look like "
            "'blocks.3.hook_resid_pre'."
        )
    return name


@torch.no_grad()
def block_activations(runner: Runner, tokens: Tensor) -> dict[str, list]:
    """Every block's residual stream, attention / MLP outputs and (k, v), for one batch of prompts."""
    acts: dict[str, list] = {
        k: [] for k in ("resid_pre", "resid_mid", "attn_out", "mlp_out", "resid_post", "kv")
    }
    for s in runner.walk(runner.embed(tokens), parts=True):
        for k, v in (
            ("resid_pre", s.resid_pre),
            ("resid_mid", s.resid_pre + s.attn_out),
            ("attn_out", s.attn_out),
            ("mlp_out", s.mlp_out),
            ("resid_post", s.resid_post),
            ("kv", s.kv),
        ):
            acts[k].append(v)
    return acts


def aligned(pairs: PatchPairs, clean: dict, corr: dict, rows: slice = slice(None)) -> dict:
    """The clean activations on the corrupted run's positions (pairs of unequal length, ``align="end"``)."""
    if pairs.offset == 0:
        return clean
    return {
        k: v if k == "kv" else [pairs.align(a, b, rows) for a, b in zip(v, corr[k], strict=True)]
        for k, v in clean.items()
    }


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


def _wavefront(runner: Runner, site: str, layers: set[int], clean: dict, corr: dict, p: int | None) -> Tensor:
    """Final residuals at the last position [n_variants, batch, d_model] of the runs patched at position p of each
    layer in ``layers`` (unembedded later, many at once).

    One pass over the blocks: the variant patched at layer L joins the batch when the pass reaches L, so
    no block before L is recomputed for it; positions before p reuse the corrupted run's keys/values.
    """
    start = 0 if p is None else p
    x: Tensor | None = None
    n_var = 0

    def join(x: Tensor | None, new: Tensor) -> Tensor:  # after the last block, x holds the last position only
        return new if x is None else torch.cat([x, new[:, -x.shape[1] :]])

    for layer in range(runner.n_layers):
        if site == "resid_pre" and layer in layers:
            x, n_var = join(x, _variant(site, layer, clean, corr, p)), n_var + 1
        if x is not None:
            past = None
            if start > 0:
                past = tuple(t[:, :, :start].repeat(n_var, 1, 1, 1) for t in corr["kv"][layer])
            # only the last position's logits are read: the last block runs the others as keys / values only
            last = runner.block_last if layer == runner.n_layers - 1 else runner.block
            x = last(layer, x, past_kv=past)
        if site == "attn_out" and layer in layers:
            pre = corr["resid_pre"][layer] if p is None else corr["resid_pre"][layer][:, p:]
            new = runner.mlp_half(layer, _variant(site, layer, clean, corr, p), pre)  # pre: parallel blocks
            x, n_var = join(x, new), n_var + 1
        if site == "mlp_out" and layer in layers:
            x, n_var = join(x, _variant(site, layer, clean, corr, p)), n_var + 1
    assert x is not None, "no site of this wavefront changes anything"
    return x[:, -1].reshape(n_var, -1, x.shape[-1])


def _per_layer(runner: Runner, site: str, layers: set[int], clean: dict, corr: dict, p: int | None) -> Tensor:
    """:func:`_wavefront`'s residuals for a runner without cached keys/values (the generic path): each patched run
    recomputes the whole sequence from its block, the attention / MLP output overwritten inside the block."""
    out = []
    for layer in sorted(layers):
        new = clean[site][layer]
        if p is not None:
            new = corr[site][layer].clone()
            new[:, p] = clean[site][layer][:, p]
        if site == "resid_pre":
            x = runner.run(new, start=layer)
        else:
            x = runner.block(layer, corr["resid_pre"][layer], **{site.removesuffix("_out"): new})
            x = runner.run(x, start=layer + 1)
        out.append(x[:, -1])
    return torch.stack(out)


def _unembed_values(runner: Runner, metric: Metric, finals: list[Tensor], max_rows: int = 512) -> list[float]:
    """The metric of each patched run from its final residuals (each [n_pairs, d_model]). The unembedding runs on
    up to ``max_rows`` residuals at once: on a large vocabulary its weight read, not its arithmetic, is the cost."""
    n = len(finals[0])
    per = max(1, max_rows // n)  # runs per unembedding call
    values: list[float] = []
    for i in range(0, len(finals), per):
        logits = runner.unembed(torch.cat(finals[i : i + per]))
        values += [float(metric(lg[:, None])) for lg in logits.split(n)]
    return values


@dataclass(frozen=True)
class PatchOptions:
    """Which patches :func:`patch_sweep` runs, and how.

    ``layers`` / ``positions``: the blocks and token positions to patch (None: all; negative positions count
    from the end). ``batch_size``: pairs run together. ``skip_noops``: a patch whose clean and corrupted values
    are bit-identical in every pair (a shared prompt prefix) is not rerun; its value is the corrupted run's,
    which is what rerunning gives."""

    layers: Sequence[int] | None = None
    positions: Sequence[int] | None = None
    batch_size: int = 16
    skip_noops: bool = True


@torch.no_grad()
def patch_sweep(
    model,
    pairs: PatchPairs,
    metric: Metric,
    site: str = "resid_pre",
    per_position: bool = True,
    options: PatchOptions = PatchOptions(),
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Patch clean ``site`` activations into corrupted runs, per block × position (or per block). Returns a
    tidy DataFrame: site, layer, pos (-1 = all positions), token, value."""
    layers, positions, batch_size, skip_noops = (
        options.layers,
        options.positions,
        options.batch_size,
        options.skip_noops,
    )
    check_site(site)
    runner = Runner(model)
    n_layers, n_pos = runner.n_layers, pairs.n_pos
    layers = list(range(n_layers)) if layers is None else sorted(set(layers))
    bad = [L for L in layers if not 0 <= L < n_layers]
    if bad:
        raise LftfError(f"Layer(s) {bad} out of range: this model has blocks 0..{n_layers - 1}.")
    if per_position:
        positions = list(range(n_pos)) if positions is None else list(positions)
        badp = [p for p in positions if not -n_pos <= p < n_pos]
        if badp:
            raise LftfError(
                f"Position(s) {badp} out of range: these pairs have {n_pos} tokens (0..{n_pos - 1})."
            )
        positions = [p % n_pos for p in positions]
    else:
        positions = [None]  # type: ignore[list-item]  # None: the whole sequence at once
    chunks = [slice(s, s + batch_size) for s in range(0, len(pairs), batch_size)]
    acts = [
        (block_activations(runner, pairs.clean[c]), block_activations(runner, pairs.corrupted[c]))
        for c in chunks
    ]
    acts = [(aligned(pairs, cl, co, c), co) for (cl, co), c in zip(acts, chunks, strict=True)]
    corrupted = [co["resid_post"][-1][:, -1] for _, co in acts]
    # index 0: the corrupted run, the value of every no-op patch
    finals: list[Tensor] = [torch.cat(corrupted)]
    index: dict[tuple[int | None, int], int] = {}
    for p in positions:
        # skip patches that change nothing in every pair: their value is the corrupted run's (exact, not approx.)
        todo = [
            L for L in layers if not (skip_noops and all(_is_noop(site, L, cl, co, p) for cl, co in acts))
        ]
        if todo:
            sweep = _wavefront if runner.supports_past_kv else _per_layer
            resid = torch.cat([sweep(runner, site, set(todo), cl, co, p) for cl, co in acts], dim=1)
            for layer, r in zip(todo, resid, strict=True):
                index[p, layer] = len(finals)
                finals.append(r)
        if progress:
            progress(1)
    values = _unembed_values(runner, metric, finals)
    rows = [
        {
            "site": site,
            "layer": layer,
            "pos": -1 if p is None else p,
            "token": "*" if p is None else pairs.str_tokens[p],
            "value": values[index.get((p, layer), 0)],
        }
        for p in positions
        for layer in layers
    ]
    return pd.DataFrame(rows).sort_values(["layer", "pos"], ignore_index=True)


patch_resid_pre = partial(patch_sweep, site="resid_pre", per_position=True)
patch_attn_out = partial(patch_sweep, site="attn_out", per_position=True)
patch_mlp_out = partial(patch_sweep, site="mlp_out", per_position=True)
patch_resid_pre_by_block = partial(patch_sweep, site="resid_pre", per_position=False)
patch_attn_out_by_block = partial(patch_sweep, site="attn_out", per_position=False)
patch_mlp_out_by_block = partial(patch_sweep, site="mlp_out", per_position=False)


def patch_every(
    model,
    pairs: PatchPairs,
    metric: Metric,
    per_position: bool = True,
    options: PatchOptions = PatchOptions(),
) -> pd.DataFrame:
    """All three sites in one tidy frame."""
    return pd.concat(
        [patch_sweep(model, pairs, metric, s, per_position, options) for s in SITES], ignore_index=True
    )


def as_grid(df: pd.DataFrame) -> pd.DataFrame:
    """layer × pos table of one site's values (for heatmaps and comparisons)."""
    return df.pivot(index="layer", columns="pos", values="value")


__all__ = [
    "SITES",
    "aligned",
    "as_grid",
    "block_activations",
    "check_hook_name",
    "check_site",
    "patch_attn_out",
    "patch_attn_out_by_block",
    "patch_every",
    "patch_mlp_out",
    "patch_mlp_out_by_block",
    "patch_resid_pre",
    "patch_resid_pre_by_block",
    "patch_sweep",
]
