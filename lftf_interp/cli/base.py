"""What every ``lftf`` command shares: the app, the error-to-one-line wrapper with the placement options
(:func:`command`), the console and small option parsers. :mod:`lftf_interp.cli.main` and
:mod:`lftf_interp.cli.studies` register their commands on :data:`app`."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lftf_interp.cli import Terminated, sigterm_as_interrupt
from lftf_interp.errors import Interrupted, LftfError
from lftf_interp.options import ints, items

app = typer.Typer(
    add_completion=False, help="Locate where a causal LM stores gender bias, then fix it there."
)
console = Console()
MODEL = typer.Option("smollm2-135m", help="Registry name, local HF directory, or cached HF id.")


DEVICE = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (cuda when available).")
DTYPE = typer.Option("float32", "--dtype", help="float32 or bfloat16.")
DEVICE_MAP = typer.Option(
    None,
    "--device-map",
    help="Spread a model too large for one device over several: "
    "'auto' (accelerate's big-model placement); with --max-memory, e.g. '0=20GiB,cpu=100GiB'.",
)
MAX_MEMORY = typer.Option(
    None, "--max-memory", help="Per-device memory for --device-map, e.g. '0=20GiB,cpu=100GiB'."
)


def _max_memory(text: str | None) -> dict | None:
    """``'0=20GiB,cpu=100GiB'`` → ``{0: '20GiB', 'cpu': '100GiB'}`` (checked by :class:`Placement`)."""
    if not text:
        return None
    pairs = [kv.split("=", 1) for kv in text.split(",")]
    if any(len(p) != 2 for p in pairs):
        raise LftfError(f"--max-memory {text!r} is not a list like '0=20GiB,cpu=100GiB'.")
    return {int(k) if k.strip().isdigit() else k.strip(): v.strip() for k, v in pairs}


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


FORCE = typer.Option(
    False, "--force", help="Write to an --out that holds another command's results (they may be overwritten)."
)


def _say_interrupted(e: KeyboardInterrupt) -> int:
    """Print the one line a Ctrl-C or SIGTERM ends a command with; its exit status (130 or 143)."""
    said = (
        str(e)
        if isinstance(e, Interrupted)
        else "interrupted; nothing was left half-written: rerun the same command to continue (finished rows are "
        "kept; a fine-tune resumes with --resume)"
    )
    chain: BaseException | None = e  # a run may catch the signal's exception and raise its own (Interrupted)
    while chain is not None and not isinstance(chain, Terminated):
        chain = chain.__context__
    term = chain is not None
    console.print(
        _one_line(("terminated (SIGTERM): " if term else "") + said),
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    return 143 if term else 130


def command(fn=None, *, claim: bool = True, shares: tuple[str, ...] = ()):
    """An ``lftf`` sub-command whose library errors print as one clear line (exit status 2) and whose Ctrl-C or
    SIGTERM prints one line (exit status 130 or 143; how to resume where a checkpoint exists), never a traceback.
    Every command also takes ``--device``, ``--dtype``, ``--device-map`` and ``--max-memory``: they set where the
    models it loads go, and are checked before anything loads. A command with an ``out`` folder holds it while it
    runs (:func:`~lftf_interp.experiments.rundir.claim_out`: created, locked, refused when another command's
    results are there unless ``--force``; ``shares``: commands whose results may share it); ``claim=False``
    leaves that to the command."""
    if fn is None:
        return lambda f: command(f, claim=claim, shares=shares)
    from lftf_interp.experiments.rundir import claim_out
    from lftf_interp.models.placement import Placement, placement

    name = fn.__name__.replace("_", "-")
    sig = inspect.signature(fn)
    claims = claim and "out" in sig.parameters
    own_force = "force" in sig.parameters

    @functools.wraps(fn)
    def run(
        *args,
        device: str = "cpu",
        dtype: str = "float32",
        device_map: str | None = None,
        max_memory: str | None = None,
        **kw,
    ):
        try:
            where = Placement(
                device=device, dtype=dtype, device_map=device_map, max_memory=_max_memory(max_memory)
            )
            force = kw.get("force", False) if own_force else kw.pop("force", False)
            with contextlib.ExitStack() as stack:
                stack.enter_context(sigterm_as_interrupt())
                if claims:
                    stack.enter_context(claim_out(Path(kw["out"]), name, force, shares))
                stack.enter_context(placement(where))
                return fn(*args, **kw)
        except LftfError as e:
            console.print(
                f"[bold red]error:[/] {escape(_one_line(str(e)))}",
                soft_wrap=True,
                markup=True,
                highlight=False,
            )
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt as e:
            raise typer.Exit(code=_say_interrupted(e)) from None

    extra = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for n, d, a in (
            ("device", DEVICE, str),
            ("dtype", DTYPE, str),
            ("device_map", DEVICE_MAP, str),
            ("max_memory", MAX_MEMORY, str),
            *((("force", FORCE, bool),) if claims and not own_force else ()),
        )
    ]
    run.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])  # type: ignore[attr-defined]
    return app.command()(run)


def option(config: type, name: str, *decls: str, **kw):
    """A typer option whose default and help are the config dataclass field's (one source for every default);
    ``kw`` adds to or overrides them (e.g. a CLI spelling of a tuple field)."""
    f = {f.name: f for f in fields(config)}[name]
    default = f.default if f.default_factory is MISSING else f.default_factory()
    return typer.Option(kw.pop("default", default), *decls, help=kw.pop("help", f.metadata.get("help")), **kw)


# A config field's annotation (a string under ``from __future__ import annotations``) → (the option's type, how
# its text becomes the field's value). A field of another type cannot be an option: config_options says so.
_OPTION_TYPES: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "int": (int, lambda v: v),
    "float": (float, lambda v: v),
    "str": (str, lambda v: v),
    "bool": (bool, lambda v: v),
    "int | None": (Optional[int], lambda v: v),  # noqa: UP045  (typer reads the annotation)
    "float | None": (Optional[float], lambda v: v),  # noqa: UP045
    "str | None": (Optional[str], lambda v: v),  # noqa: UP045
    "tuple[str, ...]": (str, items),  # comma-separated on the command line
    "tuple[int, ...]": (str, ints),
}


def config_options(config: type, into: str, skip: tuple[str, ...] = ()):
    """Give a command one option per field of the dataclass ``config`` (``--lora-r`` for ``lora_r``; type,
    default and help from the field, so a new field is a new option with no second edit) and pass their values
    to ``fn`` as one dict, the parameter ``into``. Fields declared ``api_only`` (:func:`lftf_interp.configs.setting`)
    have no option; ``skip``: fields the command spells itself. Apply under :func:`command`."""
    spelled = []
    for f in fields(config):
        if f.name in skip or f.metadata.get("api_only"):
            continue
        if str(f.type) not in _OPTION_TYPES:
            raise TypeError(
                f"{config.__name__}.{f.name}: type {f.type} has no command-line spelling; add one to "
                "_OPTION_TYPES or pass the field in skip."
            )
        kind, parse = _OPTION_TYPES[str(f.type)]
        default = f.default if f.default_factory is MISSING else f.default_factory()
        if isinstance(default, tuple):  # a list field: its comma-separated spelling
            default = ",".join(str(x) for x in default)
        spelled.append((f.name, kind, parse, typer.Option(default, help=f.metadata.get("help"))))

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kw):
            given = {name: parse(kw.pop(name)) for name, _, parse, _ in spelled}
            return fn(*args, **{into: given}, **kw)

        sig = inspect.signature(fn)
        own = [p for n, p in sig.parameters.items() if n != into]
        taken = {p.name for p in own}
        if clash := sorted(taken & {name for name, *_ in spelled}):
            raise TypeError(f"{fn.__name__} spells {clash} itself: pass them to config_options in skip.")
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind)
            for name, kind, _, opt in spelled
        ]
        run.__signature__ = sig.replace(parameters=[*own, *extra])
        run.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != into} | {
            p.name: p.annotation for p in extra
        }
        return run

    return wrap


def executor_options(fn):
    """Give a grid command the options of :class:`~lftf_interp.experiments.jobs.ExecutorConfig` (``--executor``,
    ``--max-jobs``, ``--cpus-per-job``, ``--gpus-per-job``, ``--partition``, ``--time-min``; defaults and help
    from its fields) and pass them to ``fn`` as one ``executor: ExecutorConfig``. Apply under :func:`command`."""
    from lftf_interp.experiments.jobs import ExecutorConfig

    spelled = (  # (parameter, ExecutorConfig field, annotation, declarations)
        ("executor", "kind", str, ("--executor",)),
        ("max_jobs", "max_jobs", int, ()),
        ("cpus_per_job", "cpus", int, ()),
        ("gpus_per_job", "gpus", int, ()),
        ("partition", "partition", str, ()),
        ("time_min", "time_min", int, ()),
    )

    @functools.wraps(fn)
    def run(*args, **kw):
        given = {f: kw.pop(p) for p, f, _, _ in spelled}
        return fn(*args, executor=ExecutorConfig(**given), **kw)

    sig = inspect.signature(fn)
    own = [p for n, p in sig.parameters.items() if n != "executor"]
    extra = [
        inspect.Parameter(
            p, inspect.Parameter.KEYWORD_ONLY, default=option(ExecutorConfig, f, *d), annotation=a
        )
        for p, f, a, d in spelled
    ]
    run.__signature__ = sig.replace(parameters=[*own, *extra])
    run.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "executor"} | {
        p.name: p.annotation for p in extra
    }
    return run


def progress_bar() -> Progress:
    """A rich progress bar with elapsed time and ETA that disappears when done."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # gone when done: an error stays one line
    )


__all__ = [
    "MODEL",
    "app",
    "command",
    "config_options",
    "console",
    "executor_options",
    "option",
    "progress_bar",
]
