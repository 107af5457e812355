"""The commands README.md and the demo's "Next:" tell a newcomer to run exist and parse as written.

`make` may install uv off the PATH (~/.cache/finlake/uv), so they call the venv's
`.venv/bin/finlake`, never `uv run`.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import typer

from finlake.cli import main
from finlake.cli.demo import next_commands

REPO = Path(__file__).resolve().parents[3]
VENV_CLI = ".venv/bin/finlake"


def _cli() -> Any:
    """The whole `finlake` command tree with the plug-ins, built without touching main.app."""
    app = copy.copy(main.app)
    app.registered_groups = list(main.app.registered_groups)
    for entry in entry_points(group="finlake.cli"):
        app.add_typer(entry.load(), name=entry.name)
    return typer.main.get_command(app)


def check_parses(line: str) -> None:
    """Resolve `.venv/bin/finlake GROUP ... COMMAND ARGS` and parse ARGS (nothing runs)."""
    words = shlex.split(line, comments=True)
    while re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # leading environment assignments
        words.pop(0)
    assert words[0] == VENV_CLI, line
    args = words[1:]
    command, path = _cli(), ["finlake"]
    while hasattr(command, "get_command") and args and not args[0].startswith("-"):
        name = args.pop(0)
        command = command.get_command(None, name)
        assert command is not None, f"{line}: `{' '.join(path)}` has no command {name!r}"
        path.append(name)
    if "--help" not in args:
        assert not hasattr(command, "get_command"), f"{line}: `{' '.join(path)}` needs a command"
        command.make_context(" ".join(path), args)  # raises on an unknown option or a bad value


def readme_shell_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_and_demo_call_the_venv_that_make_creates() -> None:
    assert "SYNCED := .venv/.finlake-synced" in (REPO / "Makefile").read_text()
    readme = (REPO / "README.md").read_text()
    assert "uv run" not in readme, "uv may not be on PATH after `make`"
    assert sum(line.startswith(f"{VENV_CLI} ") for line in readme_shell_lines()) >= 10


@pytest.mark.parametrize(
    "line",
    [
        line
        for line in readme_shell_lines()
        if re.match(r"([A-Z_][A-Z0-9_]*=\S+ )*(\.venv/bin/)?finlake ", line)
    ],
)
def test_readme_finlake_command_exists(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    check_parses(line)


@pytest.mark.parametrize("line", [ln for ln in readme_shell_lines() if ln.startswith("make ")])
def test_readme_make_target_exists(line: str) -> None:
    target = line.split()[1]
    assert re.search(rf"^{re.escape(target)}:", (REPO / "Makefile").read_text(), flags=re.M), line


def test_demo_next_commands_call_the_venv_and_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "executable", str(REPO / ".venv" / "bin" / "python"))
    commands = next_commands()
    assert len(commands) >= 5
    for line in commands:
        check_parses(line)


def test_the_checker_rejects_a_wrong_command() -> None:
    with pytest.raises(AssertionError, match="no command 'logz'"):
        check_parses(f"{VENV_CLI} stack logz kafka")
    with pytest.raises(Exception, match="--wiht"):
        check_parses(f"{VENV_CLI} stack up --wiht trino")
