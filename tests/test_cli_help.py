"""Every command's --help shows its examples one per line; shell completion works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from ckptdiff.cli.app import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
SCRIPT = Path(sys.executable).parent / "ckptdiff"


def complete(shell: str, words: str, cword: int | None = None) -> list[str]:
    env = dict(os.environ, _CKPTDIFF_COMPLETE=f"complete_{shell}", COLUMNS="80",
               _TYPER_COMPLETE_ARGS=words, COMP_WORDS=words,
               COMP_CWORD=str(cword if cword is not None else len(words.split())),
               _TYPER_COMPLETE_FISH_ACTION="get-args")
    result = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_examples_one_per_line(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^\s+Examples?:$", line))
    examples = []
    for line in lines[header + 1:]:
        if not line.strip():
            break
        examples.append(line)
    assert examples, result.output
    # Each example is a whole command on its own line (not rewrapped into prose).
    assert all(re.match(r"^\s+ckptdiff ", line) for line in examples), examples


def test_main_help_lists_commands_and_completion() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--install-completion" in result.output
    for command in ("inspect", "diff", "check", "snapshot"):
        assert command in result.output


needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")


@needs_script
def test_bash_completion_of_commands_and_format_choices() -> None:
    assert complete("bash", "ckptdiff di", 1) == ["diff"]
    formats = complete("bash", "ckptdiff diff a b --format ", 5)
    assert {"table", "json", "markdown", "github", "junit"} <= set(formats)
    assert complete("bash", "ckptdiff check --fail-on ", 3) == ["error", "warning"]


@needs_script
@pytest.mark.parametrize("command", COMMANDS)
def test_fish_completion_gives_one_line_per_option(command: str) -> None:
    # A description wrapped onto a second line would show up as a bogus completion.
    lines = complete("fish", f"ckptdiff {command} --")
    assert lines and all(line.startswith("-") for line in lines), lines


@needs_script
def test_show_and_install_completion(tmp_path: Path) -> None:
    shown = subprocess.run([str(SCRIPT), "--show-completion", "bash"], capture_output=True,
                           text=True)
    assert shown.returncode == 0 and "_CKPTDIFF_COMPLETE=complete_bash" in shown.stdout
    env = dict(os.environ, HOME=str(tmp_path), SHELL="/bin/bash")
    installed = subprocess.run([str(SCRIPT), "--install-completion", "bash"], env=env,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert "_CKPTDIFF_COMPLETE" in (tmp_path / ".bash_completions" / "ckptdiff.sh").read_text()
    assert "ckptdiff.sh" in (tmp_path / ".bashrc").read_text()
