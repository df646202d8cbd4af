"""The README's install, test and slow-job commands are what CI runs, and its examples run."""

import json
import re
import subprocess
import sys
from pathlib import Path

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


def test_formats_command_lists_the_sets(capsys):
    assert main(["formats"]) == 0
    rows = {line.split()[0]: line.split(None, 4) for line in capsys.readouterr().out.splitlines()[1:-1]}
    # BitMoD's four 4-bit variants (ER/EA, +/-), two id bits' worth; ANT pairs INT with FLINT
    assert rows["bitmod4"] == ["bitmod4", "4", "4", "2", "fp4_er_pos, fp4_er_neg, fp4_ea_pos, fp4_ea_neg"]
    assert rows["ant4"][:3] == ["ant4", "4", "2"] and rows["ant4"][4] == "int4, flint4"


def test_formats_command_shows_codes_and_terms(capsys):
    assert main(["formats", "bitmod4"]) == 0
    out = capsys.readouterr().out
    er_pos = out[out.index("id 0: fp4_er_pos"):out.index("id 1:")]
    # the redundant -0 code holds the extra value: +5 (x2 = 10) for ER, -8 (x2 = -16) for EA-neg
    assert "code 1000 ->   10 = +2^3 +2^1" in er_pos
    assert "code 0111 ->   12 = +2^4 -2^2" in er_pos
    assert "code 1000 ->  -16 = -2^4" in out[out.index("id 3: fp4_ea_neg"):]


def test_formats_command_json(capsys):
    assert main(["formats", "bitmod3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in d["formats"]] == ["fp3_er_pos", "fp3_er_neg", "fp3_ea_pos", "fp3_ea_neg"]
    assert d["formats"][0]["codebook"] == [0, 1, 2, 4, 3, -1, -2, -4]
    assert d["formats"][3]["codebook"] == [0, 1, 2, 4, -6, -1, -2, -4]
    assert len(d["hash"]) == 16 and d["id_bits"] == 2


def test_unknown_set_is_one_line_error(capsys):
    assert main(["formats", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bitmix: error: unknown format set 'nope'")
