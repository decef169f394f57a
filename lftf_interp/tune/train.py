"""Fine-tune only the located block(s): attention + MLP weights, everything else frozen.

Efficiency: blocks before the first tuned block never change, so their output (the tuned block's input) is
computed once per prompt and cached; each step runs from that block to the unembedding, last position only.

Robustness: checkpoints every ``checkpoint_every`` steps (safetensors: tuned weights + AdamW state; JSON:
step, history); ``resume=True`` continues to the same result as an uninterrupted run, because the batch of
step t depends only on (seed, t). A non-finite loss stops the run with :class:`TrainingError`; the last good
checkpoint is kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..data.datasets import NEUTRAL_PROMPTS, load_dataset
from ..errors import LftfError
from ..metrics import afgb_per_prompt, pair_probs, ub_per_prompt
from ..runner import block_param_names, canonical_state_dict
from ..tokens import target_ids
from .losses import LOSSES, hint_loss, kl_to_base, log_pair_mass, mass_anchor, pronoun_loss
from .scopes import BlockInputCache, BlockScope, FullScope, LoraScope, last_logits_from


class TrainingError(LftfError):
    pass


METHODS = ("block", "full", "lora")


@dataclass
class TuneConfig:
    block: int | str = "auto"  # an index, or "auto" = BMI rank 1 (see bmi_exclude)
    top_k: int = 1  # with "auto": tune the k top-BMI blocks
    bmi_exclude: tuple[int, ...] = ()  # blocks "auto" may not pick (e.g. (0,) — see notebook 02)
    loss: str = "balanced"
    lr: float = 1e-4
    steps: int = 60
    batch_size: int = 32
    hint_weight: float = 0.0  # cross-entropy toward the hinted pronoun on GenHintEval train
    kl_weight: float = 0.0  # KL(base ‖ tuned) on neutral text
    mass_weight: float = 0.0  # (log he+she mass − base log mass)² on the training prompts
    eval_every: int = 10
    n_val: int | None = None
    patience: int | None = None  # evaluations without a better validation AFGB before stopping
    restore_best: bool = True
    checkpoint_every: int = 0
    seed: int = 0
    male: tuple[str, ...] = (" he",)
    female: tuple[str, ...] = (" she",)
    method: str = "block"  # "block" (LFTF), "full" (FPFT baseline), "lora" (peft LoRA on all blocks)
    lora_r: int = 8
    lora_alpha: int = 16

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not (isinstance(self.block, int) or self.block == "auto"):
            raise ValueError(f"block must be an index or 'auto', got {self.block!r}")
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("steps, batch_size and eval_every must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.bmi_exclude = tuple(self.bmi_exclude)
        self.male, self.female = tuple(self.male), tuple(self.female)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TuneConfig:
        return cls(**d)


def resolve_blocks(model, cfg: TuneConfig) -> list[int]:
    n = model.cfg.n_layers
    if isinstance(cfg.block, int):
        if not 0 <= cfg.block < n:
            raise LftfError(f"block {cfg.block} out of range: this model has blocks 0..{n - 1}.")
        return [cfg.block]
    from ..locate.bmi import compute_bmi

    bmi = compute_bmi(model, load_dataset("genbias", "train").subset(n=300, seed=cfg.seed).prompts)
    bmi = bmi[~bmi.layer.isin(cfg.bmi_exclude)].sort_values(["rank", "layer"])
    return sorted(int(x) for x in bmi.layer.iloc[: cfg.top_k])


def trainable_names(blocks: Sequence[int]) -> list[str]:
    return [name for b in blocks for name in block_param_names(b)]


def freeze_all_but(model, names: Sequence[str]) -> dict[str, torch.nn.Parameter]:
    params = canonical_state_dict(model)
    for p in params.values():
        p.requires_grad_(False)
    for n in names:
        params[n].requires_grad_(True)
    return {n: params[n] for n in names}


def _batch_indices(n: int, size: int, seed: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(n, generator=g)[: min(size, n)]


@torch.no_grad()
def _eval_cache(scope, cache: BlockInputCache, male, female, labels=None, chunk: int = 128) -> dict:
    p_he, p_she = [], []
    for s in range(0, len(cache), chunk):
        a, b = pair_probs(scope.last_logits(cache, torch.arange(s, min(s + chunk, len(cache)))), male, female)
        p_he.append(a)
        p_she.append(b)
    a, b = torch.cat(p_he).numpy(), torch.cat(p_she).numpy()
    out = {"afgb": float(afgb_per_prompt(a, b).mean()), "mass": float((a + b).mean())}
    if labels is not None:
        out["ub"] = float(ub_per_prompt(a, b, labels).mean())
    return out


@dataclass
class TuneResult:
    blocks: list[int]
    history: pd.DataFrame
    best_step: int
    best_val: dict
    config: TuneConfig
    trainable_params: int
    base_fingerprint: str
    extra: dict = field(default_factory=dict)


def _save_checkpoint(ckpt: Path, step: int, params: dict, opt: torch.optim.Optimizer, history: list, best: dict) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    save_file({n: p.detach().contiguous() for n, p in params.items()}, ckpt / "params.safetensors.tmp")
    state = {}
    for n, p in params.items():
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq", "step"):
            if k in st:
                state[f"{n}::{k}"] = st[k].detach().reshape(st[k].shape).contiguous()
    save_file(state, ckpt / "optim.safetensors.tmp")
    (ckpt / "state.json.tmp").write_text(json.dumps({"step": step, "history": history, "best": best}, default=float))
    for f in ("params.safetensors", "optim.safetensors", "state.json"):  # commit all three together
        (ckpt / f"{f}.tmp").replace(ckpt / f)


def _load_checkpoint(ckpt: Path, params: dict, opt: torch.optim.Optimizer) -> dict:
    saved = load_file(ckpt / "params.safetensors")
    if set(saved) != set(params):
        raise TrainingError(f"Checkpoint {ckpt} holds {sorted(saved)[:3]}..., not the blocks being tuned; "
                            "resume with the same block, or start a new output directory.")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(saved[n])
    ost = load_file(ckpt / "optim.safetensors")
    for n, p in params.items():
        if f"{n}::step" in ost:
            opt.state[p] = {k: ost[f"{n}::{k}"].clone() for k in ("exp_avg", "exp_avg_sq", "step")}
    return json.loads((ckpt / "state.json").read_text())


def tune(
    model,
    cfg: TuneConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[int, dict], None] | None = None,
) -> TuneResult:
    """LFTF fine-tune of ``model`` in place. Returns the training history and the best validation metrics."""
    from .delta import block_fingerprint

    torch.manual_seed(cfg.seed)
    if cfg.method == "block":
        blocks = resolve_blocks(model, cfg)
        base_fp = block_fingerprint(model, blocks)
        scope = BlockScope(model, blocks)
    else:
        blocks = list(range(model.cfg.n_layers))
        base_fp = block_fingerprint(model, blocks)
        scope = FullScope(model) if cfg.method == "full" else LoraScope(model, cfg.lora_r, cfg.lora_alpha, cfg.seed)
    params = scope.params
    male, female = target_ids(model, cfg.male), target_ids(model, cfg.female)

    train = load_dataset("genbias", "train")
    val = load_dataset("genbias", "validation").subset(n=cfg.n_val, seed=cfg.seed)
    val_hint = load_dataset("genhint", "validation").subset(n=cfg.n_val, seed=cfg.seed)
    c_train, c_val, c_vhint = scope.cache(train.prompts), scope.cache(val.prompts), scope.cache(val_hint.prompts)
    hint_train = load_dataset("genhint", "train")
    c_hint = scope.cache(hint_train.prompts) if cfg.hint_weight > 0 else None
    hint_labels = torch.tensor((hint_train.df.label == "he").to_numpy())
    if cfg.mass_weight > 0:  # the base model's log he+she mass per training prompt (before any update)
        with torch.no_grad():
            base_log_mass = torch.cat([
                log_pair_mass(scope.last_logits(c_train, torch.arange(s, min(s + 128, len(c_train)))), male, female)
                for s in range(0, len(c_train), 128)
            ])
    if cfg.kl_weight > 0:
        c_neutral = scope.cache(NEUTRAL_PROMPTS)
        with torch.no_grad():
            base_neutral = scope.all_logits(c_neutral)

    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=0.0)
    ckpt = Path(out_dir) / "checkpoint" if out_dir else None
    history: list[dict] = []
    best = {"step": 0, "val": None, "params": None}
    first_step = 1
    if resume:
        if ckpt is None or not (ckpt / "state.json").is_file():
            raise TrainingError(f"Nothing to resume: no checkpoint under {ckpt}. Run without resume first.")
        state = _load_checkpoint(ckpt, params, opt)
        history, first_step = state["history"], state["step"] + 1
        best = {"step": state["best"]["step"], "val": state["best"]["val"], "params": None}
        if (ckpt / "best.safetensors").is_file():
            best["params"] = load_file(ckpt / "best.safetensors")

    def evaluate(step: int) -> dict:
        v = _eval_cache(scope, c_val, male, female)
        h = _eval_cache(scope, c_vhint, male, female, val_hint.df.label.to_numpy())
        return {"step": step, "val_afgb": v["afgb"], "val_mass": v["mass"], "val_ub": h["ub"]}

    if first_step == 1:
        history.append({**evaluate(0), "loss": float("nan")})
        best = {"step": 0, "val": history[-1], "params": {n: p.detach().clone() for n, p in params.items()}}
    bad_evals = 0
    for step in range(first_step, cfg.steps + 1):
        idx = _batch_indices(len(c_train), cfg.batch_size, cfg.seed, step)
        logits = scope.last_logits(c_train, idx)
        loss = pronoun_loss(logits, male, female, cfg.loss)
        parts = {"loss_pronoun": loss.item()}
        if cfg.mass_weight > 0:
            lmass = mass_anchor(logits, male, female, base_log_mass[idx])
            loss = loss + cfg.mass_weight * lmass
            parts["loss_mass"] = lmass.item()
        if c_hint is not None:
            hidx = _batch_indices(len(c_hint), cfg.batch_size, cfg.seed + 7919, step)
            lh = hint_loss(scope.last_logits(c_hint, hidx), male, female, hint_labels[hidx])
            loss = loss + cfg.hint_weight * lh
            parts["loss_hint"] = lh.item()
        if cfg.kl_weight > 0:
            tuned = scope.all_logits(c_neutral)
            lk = kl_to_base(tuned, base_neutral)
            loss = loss + cfg.kl_weight * lk
            parts["loss_kl"] = lk.item()
        if not torch.isfinite(loss):
            where = f"the last good checkpoint is in {ckpt}" if ckpt and (ckpt / "state.json").is_file() else "no checkpoint was written"
            raise TrainingError(
                f"Loss became {loss.item()} at step {step} ({parts}); stopping. {where}. Lower the learning rate "
                f"(now {cfg.lr}) or check the data."
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {"step": step, "loss": loss.item(), **parts}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row.update(evaluate(step))
            if best["val"] is None or row["val_afgb"] < best["val"]["val_afgb"]:
                best = {"step": step, "val": {k: row[k] for k in ("step", "val_afgb", "val_mass", "val_ub")},
                        "params": {n: p.detach().clone() for n, p in params.items()}}
                bad_evals = 0
            else:
                bad_evals += 1
        history.append(row)
        if progress:
            progress(step, row)
        if ckpt and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            _save_checkpoint(ckpt, step, params, opt, history, {"step": best["step"], "val": best["val"]})
            if best["params"] is not None:
                save_file({n: t.contiguous() for n, t in best["params"].items()}, ckpt / "best.safetensors")
        if cfg.patience is not None and bad_evals > cfg.patience:
            break
    if cfg.restore_best and best["params"] is not None:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(best["params"][n])
    scope.finish()
    return TuneResult(
        blocks=blocks,
        history=pd.DataFrame(history),
        best_step=int(best["step"]),
        best_val={k: v for k, v in (best["val"] or {}).items() if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))},
        config=cfg,
        trainable_params=int(sum(p.numel() for p in params.values())),
        base_fingerprint=base_fp,
    )


__all__ = ["METHODS", "BlockInputCache", "TrainingError", "TuneConfig", "TuneResult", "freeze_all_but", "resolve_blocks", "last_logits_from", "tune"]
