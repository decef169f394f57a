"""What every ``lftf`` command shares: the app, the error-to-one-line wrapper with the placement options
(:func:`command`), the console and small option parsers. :mod:`lftf_interp.cli.main` and
:mod:`lftf_interp.cli.studies` register their commands on :data:`app`."""

from __future__ import annotations

import functools
import inspect
from dataclasses import MISSING, fields

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

from lftf_interp.errors import Interrupted, LftfError

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


def command(fn):
    """An ``lftf`` sub-command whose library errors print as one clear line (exit status 2) and whose Ctrl-C
    prints one line (exit status 130; how to resume where a checkpoint exists), never a traceback. Every command
    also takes ``--device``, ``--dtype``, ``--device-map`` and ``--max-memory``: they set where the models it
    loads go, and are checked before anything loads."""
    from lftf_interp.models.placement import Placement, placement

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
            with placement(where):
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
            console.print(
                _one_line(
                    str(e)
                    if isinstance(e, Interrupted)
                    else "interrupted; nothing was left half-written: rerun "
                    "the same command to continue (finished rows are kept; a fine-tune resumes with --resume)"
                ),
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
            raise typer.Exit(code=130) from None

    sig = inspect.signature(fn)
    extra = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for n, d, a in (
            ("device", DEVICE, str),
            ("dtype", DTYPE, str),
            ("device_map", DEVICE_MAP, str),
            ("max_memory", MAX_MEMORY, str),
        )
    ]
    run.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])
    return app.command()(run)


def option(config: type, name: str, *decls: str, **kw):
    """A typer option whose default and help are the config dataclass field's (one source for every default);
    ``kw`` adds to or overrides them (e.g. a CLI spelling of a tuple field)."""
    f = {f.name: f for f in fields(config)}[name]
    default = f.default if f.default_factory is MISSING else f.default_factory()
    return typer.Option(kw.pop("default", default), *decls, help=kw.pop("help", f.metadata.get("help")), **kw)


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


__all__ = ["MODEL", "app", "command", "console", "executor_options", "option", "progress_bar"]
