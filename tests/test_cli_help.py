"""Help is for users and answers without importing torch; `python -m rome` is the CLI; commands
that never read params refuse --params/--set."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "disabled"}


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"], ["train", "--help"], ["params", "--help"]])
def test_help_imports_neither_torch_nor_timm(argv: list[str]) -> None:
    code = ("import sys, contextlib, io\nfrom rome import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    try: cli.main({argv!r})\n    except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'wandb') if m in sys.modules))\n"
            "print(len(out.getvalue()))")
    res = run_py(code)
    assert res.returncode == 0, res.stderr
    heavy, chars = res.stdout.split("\n")[:2]
    assert heavy == "[]" and int(chars) > 200


def test_stage_help_names_the_sections_it_reads() -> None:
    res = subprocess.run([sys.executable, "-m", "rome", "search", "--help"], capture_output=True, text=True, env=ENV,
                         cwd=REPO, timeout=120)
    assert res.returncode == 0 and "reads params: search" in res.stdout and "rome params search" in res.stdout


def test_top_help_is_for_users_and_fast() -> None:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "rome", "--help"], capture_output=True, text=True, env=ENV, cwd=REPO,
                         timeout=120)
    wall = time.perf_counter() - t0
    assert res.returncode == 0
    assert "prepare -> search -> derive -> train -> evaluate -> aggregate" in res.stdout
    assert "argument parsing only" not in res.stdout and "rome params" in res.stdout
    assert wall < 5.0  # generous: the point (<1 s) is held by the sys.modules test above


@pytest.mark.parametrize("command", [["table", "--check"], ["pipeline", "--check"], ["genotypes"]])
def test_commands_that_ignore_params_refuse_set(command: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "rome", *command, "--set", "bogus=1"], capture_output=True, text=True,
                         env=ENV, cwd=REPO, timeout=120)
    assert res.returncode == 2 and "unrecognized arguments: --set" in res.stderr


def test_completion_script_through_shtab() -> None:
    res = subprocess.run([sys.executable, "-m", "rome", "--print-completion", "bash"], capture_output=True, text=True,
                         env=ENV, cwd=REPO, timeout=120)
    assert res.returncode == 0 and "search" in res.stdout and "complete" in res.stdout
