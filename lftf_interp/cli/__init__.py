"""The ``lftf`` command line (:mod:`.main`): thin commands over :mod:`lftf_interp.experiments`.

:func:`launch` (the ``lftf`` console script) imports the commands (torch, transformers: a few seconds) only once
it runs, so that Ctrl-C or SIGTERM while they load ends with one line, as it does later in a command."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cluster's time limit, ``kill``), raised where Ctrl-C would be so the run ends the same way."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) where the run is."""

    def on_term(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def launch() -> None:
    """The ``lftf`` console script: :func:`lftf_interp.cli.main.main` once the commands are imported."""
    try:
        with sigterm_as_interrupt():
            from lftf_interp.cli.main import main
    except KeyboardInterrupt as e:
        term = isinstance(e, Terminated)
        sys.stderr.write(
            f"{'terminated (SIGTERM)' if term else 'interrupted'} while starting; nothing was written.\n"
        )
        raise SystemExit(143 if term else 130) from None
    main()


def __getattr__(name: str):
    if name == "app":  # the Typer app, for tests and documentation tools
        from lftf_interp.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Terminated", "app", "launch", "sigterm_as_interrupt"]
