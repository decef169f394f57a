"""Metrics: next-word probabilities of a bias axis's groups after a prompt, and the bias and hint-following
scores built on them (:mod:`.groups` for any axis of K groups; :mod:`.pronoun` for the he / she case, where
the bias score is AFGB and hint following is UB)."""

from lftf_interp.metrics.groups import evaluate_axis, score_prompts, summarize_axis
from lftf_interp.metrics.pronoun import (
    EvalConfig,
    PronounTargets,
    afgb_paper_score,
    afgb_score,
    bootstrap_ci,
    evaluate,
    ub_score,
)
from lftf_interp.metrics.wordprobs import word_logprobs

__all__ = [
    "EvalConfig",
    "PronounTargets",
    "afgb_paper_score",
    "afgb_score",
    "bootstrap_ci",
    "evaluate",
    "evaluate_axis",
    "score_prompts",
    "summarize_axis",
    "ub_score",
    "word_logprobs",
]
