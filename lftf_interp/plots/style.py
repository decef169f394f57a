"""The figures' look (seaborn's whitegrid theme, notebook context), applied only while a figure is drawn:
importing :mod:`lftf_interp.plots` changes no global matplotlib or seaborn state and selects no backend."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import matplotlib as mpl
import seaborn as sns

F = TypeVar("F", bound=Callable)
_THEME: dict | None = None


def theme_rc() -> dict:
    """The rcParams seaborn's theme would set, computed without setting them."""
    global _THEME
    if _THEME is None:
        before = dict(mpl.rcParams)
        with mpl.rc_context():
            sns.set_theme(style="whitegrid", context="notebook")
            after = dict(mpl.rcParams)
        _THEME = {k: v for k, v in after.items() if k != "backend" and before.get(k) != v}
    return _THEME


def themed(fn: F) -> F:
    """Draw ``fn``'s figure under the theme; the caller's rcParams are untouched afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(theme_rc()):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = ["theme_rc", "themed"]
