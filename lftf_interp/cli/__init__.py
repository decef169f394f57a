"""The ``lftf`` command line (:mod:`.main`): thin commands over :mod:`lftf_interp.experiments`."""

from lftf_interp.cli.main import app, main

__all__ = ["app", "main"]
