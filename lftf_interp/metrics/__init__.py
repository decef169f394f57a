"""Metrics: next-word probabilities of a bias axis's groups after a prompt, and the bias and hint-following
scores built on them (:mod:`.groups` scores every axis of K groups; :mod:`.pronoun` holds the two-group
formulas, where the bias score is AFGB and hint following is UB)."""

from lftf_interp.metrics.groups import (
    EvalConfig,
    evaluate,
    evaluate_axis,
    prompt_probs,
    score_prompts,
    summarize_axis,
)
from lftf_interp.metrics.pronoun import afgb_paper_score, afgb_score, bootstrap_ci, ub_score
from lftf_interp.metrics.wordprobs import word_logprobs

__all__ = [
    "EvalConfig",
    "afgb_paper_score",
    "afgb_score",
    "bootstrap_ci",
    "evaluate",
    "evaluate_axis",
    "prompt_probs",
    "score_prompts",
    "summarize_axis",
    "ub_score",
    "word_logprobs",
]
