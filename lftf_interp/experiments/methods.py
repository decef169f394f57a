"""The methods of a comparison as data: :class:`MethodSpec` (which parameters train, with which TuneConfig
overrides, or which instruction is prepended) and :func:`default_methods`, the rows of ``lftf compare``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lftf_interp.configs import Config
from lftf_interp.errors import ConfigError
from lftf_interp.locate.choose import AUTO

RANDOM_BLOCK = (
    "random"  # MethodSpec.tune["block"] placeholder, drawn by :func:`draw_random_block` at run time
)

TWIN_BLOCKS = (
    "twin"  # MethodSpec.tune["block"] placeholder: twin patching's top blocks on StereoSet fit sentences
)

AXIS_INSTRUCTION = (
    "axis"  # MethodSpec.instruction placeholder: the axis file's own instruction, read at run time
)


@dataclass
class MethodSpec(Config):
    name: str
    description: str
    tune: dict | None = None  # TuneConfig overrides on top of BUDGET; None = no training
    instruction: str | None = None  # prepended to every bias/hint prompt (prompt baseline); AXIS_INSTRUCTION:
    # the axis's own (BiasAxis.instruction)
    n_seeds: int | None = None  # run only the first n of the configured seeds (None = all)

    def __post_init__(self) -> None:
        if self.tune is not None and self.instruction is not None:
            raise ConfigError(
                f"Method {self.name!r}: give either tune overrides or an instruction, not both."
            )


PAIR_WEIGHT = 30.0  # pair and margin terms' weight (mean per-token scores: differences of a few hundredths)

# The baselines that train every parameter (or LoRA adapters on every block): name, description, TuneConfig terms.
BASELINES = (
    ("lora", "peft LoRA r=8 on all blocks' attention + MLP", {"method": "lora", "lr": 1e-3}),
    ("fpft", "full-parameter fine-tune", {"method": "full", "lr": 1e-5}),
    (
        "cda",
        "counterfactual data augmentation: every parameter, the balanced loss on gender-swapped corpus sentence "
        "pairs only (no template prompts)",
        {
            "method": "full",
            "lr": 1e-5,
            "template_weight": 0.0,
            "hint_weight": 0.0,
            "mass_weight": 0.0,
            "cda_weight": 1.0,
        },
    ),
)


# The same baselines on the StereoSet pair material: name, description, TuneConfig terms.
_FULL_PAIRS = {"method": "full", "lr": 1e-5}
PAIR_BASELINES = (
    (
        "lora-pairs",
        "lora + the StereoSet fit-term pair and margin terms",
        {"method": "lora", "lr": 1e-3, "pair_weight": PAIR_WEIGHT, "lms_weight": PAIR_WEIGHT},
    ),
    (
        "fpft-pairs",
        "fpft + the StereoSet fit-term pair and margin terms",
        {**_FULL_PAIRS, "pair_weight": PAIR_WEIGHT, "lms_weight": PAIR_WEIGHT},
    ),
    (
        "cda-pairs",
        "counterfactual data augmentation on the pair material: every parameter, only the balanced loss between "
        "each StereoSet fit sentence and its twin about the other group",
        {
            **_FULL_PAIRS,
            "template_weight": 0.0,
            "hint_weight": 0.0,
            "mass_weight": 0.0,
            "swap_weight": PAIR_WEIGHT,
        },
    ),
)


def _beyond_template(on_bmi) -> list[MethodSpec]:
    """The LFTF rows with terms beyond the template (gendered nouns, WinoBias, whole sentences, long context,
    StereoSet pairs), each built by ``on_bmi`` on BMI's top block(s)."""
    return [
        on_bmi("lftf-gendered", "lftf-balanced + gendered-noun retention term", gendered_weight=1.0),
        on_bmi(
            "lftf-beyond",
            "lftf-balanced + gendered-noun retention + WinoBias-dev term",
            gendered_weight=1.0,
            winobias_weight=1.0,
        ),
        on_bmi(
            "lftf-sentence",
            "lftf-gendered + the balanced loss on whole WinoBias-dev sentence pairs",
            gendered_weight=1.0,
            winobias_sentence_weight=1.0,
        ),
        on_bmi(
            "lftf-context",
            "lftf-balanced + the balanced loss on training prompts after 0-1,024 tokens of neutral text",
            context_weight=1.0,
        ),
        on_bmi(
            "lftf-general",
            "top-3 BMI blocks: lftf-context + gendered-noun retention + WinoBias dev-fit pronoun term",
            top_k=3,
            context_weight=1.0,
            gendered_weight=1.0,
            winobias_weight=1.0,
            winobias_split="dev-fit",
        ),
        on_bmi(
            "lftf-pairs",
            "lftf-balanced + the balanced loss on StereoSet fit-term sentence pairs and the margin term",
            pair_weight=PAIR_WEIGHT,
            lms_weight=PAIR_WEIGHT,
        ),
        on_bmi(
            "lftf-general-pairs",
            "lftf-general + the StereoSet fit-term pair and margin terms",
            top_k=3,
            context_weight=1.0,
            gendered_weight=1.0,
            winobias_weight=1.0,
            winobias_split="dev-fit",
            pair_weight=PAIR_WEIGHT,
            lms_weight=PAIR_WEIGHT,
        ),
        on_bmi(
            "lftf-swap",
            "lftf-balanced + the balanced loss between each StereoSet fit sentence and its twin about the other group",
            swap_weight=PAIR_WEIGHT,
        ),
        on_bmi(
            "lftf-twin-swap",
            "lftf-swap on twin patching's top-3 blocks on StereoSet fit sentences (where sentence bias sits)",
            top_k=3,
            block=TWIN_BLOCKS,
            swap_weight=PAIR_WEIGHT,
        ),
    ]


def default_methods(
    n_layers: int, seed: int = 0, exclude: str | Sequence[int] = AUTO, n_seeds_other: int | None = None
) -> list[MethodSpec]:
    """The comparison: three LFTF losses on the top-BMI block, other blocks, FPFT, LoRA, prompt, and
    LFTF with the gendered-noun retention term, with it plus the WinoBias-dev pronoun term, with it
    plus the WinoBias-dev whole-sentence term, with the long-context term, and all of them on the three top-BMI
    blocks (``lftf-general``).
    ``lftf-balanced`` runs on every seed; the others on ``n_seeds_other`` (None: every seed too).
    ``exclude``: the blocks BMI's choice sets aside (``"auto"``: the embedding-artefact blocks of the model,
    :func:`lftf_interp.locate.artefact_blocks`)."""
    middle = n_layers // 2
    ex = exclude if isinstance(exclude, str) else tuple(exclude)

    def on_bmi(name: str, description: str, top_k: int | None = None, **terms) -> MethodSpec:
        """A method trained on BMI's top block(s) past ``exclude``, with these TuneConfig terms."""
        top = {"top_k": top_k} if top_k else {}
        return MethodSpec(  # terms may name another block rule (block="twin")
            name, description, {"block": "auto", **top, "bmi_exclude": ex, **terms}, n_seeds=n_seeds_other
        )

    return [
        MethodSpec("base", "the untouched model"),
        MethodSpec("prompt", "debiasing instruction prepended, no training", instruction=AXIS_INSTRUCTION),
        MethodSpec(
            "lftf-balanced", "top-BMI block, balanced loss + hint term", {"block": "auto", "bmi_exclude": ex}
        ),
        on_bmi(
            "lftf-balanced-nomass",
            "top-BMI block, balanced loss + hint term, no mass anchor",
            mass_weight=0.0,
        ),
        on_bmi("lftf-paper", "top-BMI block, paper loss + hint term", loss="paper"),
        on_bmi("lftf-sum", "top-BMI block, sum loss + hint term", loss="sum"),
        *_beyond_template(on_bmi),
        MethodSpec(
            "block-last",
            f"block {n_layers - 1}, the last (the paper's BMI pick)",
            {"block": n_layers - 1},
            n_seeds=n_seeds_other,
        ),
        on_bmi("top3-bmi", "the 3 top-BMI blocks", top_k=3),
        MethodSpec("block-middle", f"block {middle}", {"block": middle}, n_seeds=n_seeds_other),
        MethodSpec(
            "block-random",
            "a seeded random block other than the first, middle, last and top-3 BMI blocks",
            {"block": RANDOM_BLOCK, "bmi_exclude": ex, "draw_seed": seed},
            n_seeds=n_seeds_other,
        ),
        MethodSpec("block-first", "block 0", {"block": 0}, n_seeds=n_seeds_other),
        *(
            MethodSpec(name, description, dict(terms), n_seeds=n_seeds_other)
            for name, description, terms in (*BASELINES, *PAIR_BASELINES)
        ),
    ]


__all__ = [
    "AXIS_INSTRUCTION",
    "BASELINES",
    "PAIR_BASELINES",
    "PAIR_WEIGHT",
    "RANDOM_BLOCK",
    "TWIN_BLOCKS",
    "MethodSpec",
    "default_methods",
]
