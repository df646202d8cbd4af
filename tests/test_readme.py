"""The README's install, test and slow-job commands are what CI runs, and its examples run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bitmix.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _ci_command(marker: str) -> str:
    lines = (ROOT / ".ci/run").read_text().splitlines()
    return lines[lines.index(f"# README:{marker}") + 1].strip()


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Install and test.*?```console\n(.*?)```", readme, re.S).group(1).splitlines()
    assert block[1] == _ci_command("install")
    assert block[2] == _ci_command("test")
    assert block[3] == _ci_command("slow")


def test_readme_python_example_runs():
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(import torch\nfrom golden.quant.*?)```", readme, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "4.0625"


@pytest.mark.parametrize("argv", [["formats"], ["formats", "bitmod4"], ["formats", "bitmod3", "--json"]])
def test_formats_command(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "bitmod" in out


def test_unknown_set_is_one_line_error(capsys):
    assert main(["formats", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bitmix: error: unknown format set 'nope'")
