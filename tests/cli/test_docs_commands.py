"""Every ``lftf …`` command that README.md and docs/ show parses against the real CLI: the command exists and
every option it names is one of that command's, with a value of the right type."""

import re
import shlex

import pytest
import typer
from helpers import REPO
from typer import _click as click  # the click typer builds its commands with (typer >= 0.29 ships its own)
from typer._click import exceptions as errors

from lftf_interp.cli.main import app

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
INLINE = re.compile(r"`(lftf [^`\n]+)`")
PLACEHOLDER = re.compile(r"\[[^\]]*\]|\.\.\.|…")  # `lftf validity [--delta D]`, `--probes ...`


def documented_commands(text: str) -> list[tuple[str, bool]]:
    """The ``lftf …`` commands of a markdown text, each with whether it is shown whole: each line of a fenced
    block that starts with ``lftf`` (with its backslash continuations, without its ``#`` comment; whole), and each
    inline ```lftf …``` span (prose naming a command or its options: ``lftf mechanism``, ``lftf sweep --axis``)."""
    found, fence = [], False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = not fence
        elif fence and re.match(r"\s*(\$ )?lftf\s", line):
            cmd = line.strip().removeprefix("$ ")
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            found.append((" ".join(cmd.split(" #")[0].split()), True))
        i += 1
    found += [(c, False) for c in INLINE.findall(text)]
    return [(c, whole) for c, whole in found if "COMMAND" not in c]


def parse(command: str, whole: bool = True) -> None:
    """Parse ``command`` (``lftf SUB ARGS``) with the CLI's own parser; raises click's error when it does not
    parse (an unknown command or option, a missing or mistyped value). Not ``whole`` (a span of prose): only
    the command and the option names are checked."""
    words = shlex.split(PLACEHOLDER.sub(" ", command))[1:]
    group = typer.main.get_command(app)
    sub = group.get_command(click.Context(group), words[0])  # type: ignore[attr-defined]  (a TyperGroup)
    if sub is None:
        raise errors.UsageError(f"No such command {words[0]!r}")
    if whole:
        sub.make_context(words[0], words[1:], resilient_parsing=False)
        return
    names = {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}
    for word in words[1:]:
        if word.startswith("--") and (opt := word.split("=")[0]) not in names:
            raise errors.NoSuchOption(opt)


COMMANDS = sorted(
    {
        (p.relative_to(REPO).as_posix(), c, whole)
        for p in DOC_FILES
        for c, whole in documented_commands(p.read_text())
    }
)


def test_the_docs_show_commands_to_check():
    assert len(COMMANDS) > 50
    assert {c.split()[1] for _, c, _ in COMMANDS} >= {"evaluate", "locate", "finetune", "compare", "sweep"}


@pytest.mark.parametrize(
    ("where", "command", "whole"), COMMANDS, ids=[f"{w}:{c[:60]}" for w, c, _ in COMMANDS]
)
def test_each_documented_command_parses(where, command, whole):
    try:
        parse(command, whole)
    except errors.ClickException as e:
        pytest.fail(f"{where}: `{command}` does not parse: {e.format_message()}")


def test_a_removed_option_fails_the_check():
    with pytest.raises(errors.NoSuchOption, match="--context-wait"):
        parse("lftf finetune --top-k 3 --context-wait 1")
    with pytest.raises(errors.BadParameter):
        parse("lftf finetune --steps many")
    with pytest.raises(errors.UsageError, match="No such command"):
        parse("lftf finetuned --steps 3")
    md = "```bash\nlftf finetune --top-k 3 --gendered-weight 1 \\\n  --out out/x   # a comment\n```\n`lftf locate`"
    assert documented_commands(md) == [
        ("lftf finetune --top-k 3 --gendered-weight 1 --out out/x", True),
        ("lftf locate", False),
    ]
    with pytest.raises(errors.NoSuchOption, match="--context-wait"):
        parse("lftf finetune --context-wait", whole=False)


def cheap_commands() -> list[str]:
    """The documented ``lftf evaluate`` commands that run on a CPU with files the checkout has, each once."""
    found = set()
    for _, command, whole in COMMANDS:
        words = shlex.split(command)
        if not whole or words[1] != "evaluate" or "--device-map" in words or "--data" in words:
            continue
        args = dict(zip(words[2::2], words[3::2], strict=False))
        if (axis := args.get("--axis", "gender")).endswith((".yaml", ".json")) and not (
            REPO / axis
        ).is_file():
            continue
        found.add(tuple(w for k, v in args.items() if k not in ("--model", "--out") for w in (k, v)))
    return [" ".join(a) for a in sorted(found)]


@pytest.mark.parametrize("args", cheap_commands())
def test_documented_evaluate_commands_run_on_the_tiny_model(args, tiny3_dir, tmp_path, monkeypatch):
    from helpers import lftf

    monkeypatch.chdir(REPO)  # paths in the docs are relative to the checkout
    res = lftf(
        "evaluate", *shlex.split(args), "--model", tiny3_dir, "--out", tmp_path / "out", "--n-boot", "20"
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "metrics.json").is_file()
