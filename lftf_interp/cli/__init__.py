"""The ``lftf`` command line (:mod:`.main`): thin commands over :mod:`lftf_interp.experiments`.

:func:`launch` (the ``lftf`` console script) imports the commands (torch, transformers: a few seconds) only once
it runs, so that Ctrl-C or SIGTERM while they load ends with one line, as it does later in a command."""

from __future__ import annotations

import signal
import sys


class _Terminated(KeyboardInterrupt):
    pass


def _on_term(signum, frame):
    raise _Terminated()


def launch() -> None:
    """The ``lftf`` console script: :func:`lftf_interp.cli.main.main` once the commands are imported."""
    old = signal.signal(signal.SIGTERM, _on_term)
    try:
        from lftf_interp.cli.main import main
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, _Terminated) else "interrupted"
        sys.stderr.write(f"{what} while starting; nothing was written.\n")
        raise SystemExit(143 if isinstance(e, _Terminated) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    main()


def __getattr__(name: str):
    if name == "app":  # the Typer app, for tests and documentation tools
        from lftf_interp.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "launch"]
