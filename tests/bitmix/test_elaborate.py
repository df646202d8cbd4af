"""`bitmix elaborate`: Verilog + manifest, Verilator lint, one-line errors."""

import json
import subprocess
import sys

import pytest

from bitmix.cli import main
from bitmix.elaborate import LINT_WAIVERS, lint
from bitmix.errors import BitmixError
from hw.params import PE_PIPELINE_DEPTH


def test_elaborate_writes_verilog_and_manifest(tmp_path, capsys):
    out = tmp_path / "hw"
    rc = main(["elaborate", "--lanes", "8", "--group-size", "64", "--format-set", "bitmod3",
               "--k", "256", "--scale-bits", "6", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lint: passed" in text
    man = json.loads((out / "dot_unit.json").read_text())
    v = (out / "dot_unit.v").read_text()
    assert "module dot_unit" in v
    assert man["parameters"] == {"lanes": 8, "group_size": 64, "act_bits": 8, "scale_bits": 6,
                                 "max_groups": 4, "format_set": "bitmod3",
                                 "format_set_hash": man["format_set"]["hash"]}
    from golden.formats import get_format_set
    assert man["format_set"]["hash"] == get_format_set("bitmod3").hash
    ports = {p["name"]: p for p in man["ports"]}
    assert {"clk", "rst", "weights__payload", "weights__valid", "weights__ready", "groups__payload",
            "groups__valid", "groups__ready", "result__payload", "result__valid", "result__ready",
            "precision"} == set(ports)
    assert ports["weights__payload"]["width"] == 8 * (3 + 8)
    assert ports["result__payload"]["width"] == man["derived"]["row_bits"]
    for name, p in ports.items():      # every manifest port is in the Verilog with that width
        decl = f"input {name};" if p["width"] == 1 and p["direction"] == "input" else None
        assert (f"{p['direction']} [{p['width'] - 1}:0] {name};" in v) or (
            f"{p['direction']} {name};" in v), (name, decl)
    assert man["cycle_model"]["latency_constant"] == PE_PIPELINE_DEPTH + man["derived"]["dq_steps"]
    assert set(man["lint"]["waivers"]) == set(LINT_WAIVERS)


@pytest.mark.parametrize("argv,field", [
    (["--format-set", "nope"], "unknown format set 'nope'"),
    (["--group-size", "128", "--k", "200"], "group_size = 128 does not divide k = 200"),
    (["--lanes", "0"], "lanes = 0 is out of range"),
    (["--act-bits", "40"], "act_bits = 40 is out of range"),
    (["--scale-bits", "x"], "scale_bits must be an integer"),
    (["--lanes", "5", "--group-size", "32", "--k", "64"], "not a multiple of lanes"),
    (["--format-set", "int4_asym"], "zero point"),
])
def test_bad_input_one_line_error(argv, field, capsys, tmp_path):
    rc = main(["elaborate", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("bitmix: error: ") and field in err


def test_cli_error_has_no_traceback():
    r = subprocess.run([sys.executable, "-m", "bitmix.cli", "elaborate", "--group-size", "48",
                        "--k", "100"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "bitmix: error: group_size = 48 does not divide k = 100"
    assert "Traceback" not in r.stderr


def test_lint_failure_is_reported(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input [7:0] a, output [3:0] o);\n  wire [3:0] w;\n"
                   "  assign o = a;\nendmodule\n")        # WIDTHTRUNC + undriven wire: not waived
    with pytest.raises(BitmixError, match="verilator lint failed.*full log"):
        lint(bad, "bad")


from _readme import section  # noqa: E402


def _mask(text: str) -> str:
    import re
    return re.sub(r"[0-9a-f]{8,}|\d+", "#", text)


def test_doc_cli_examples_run_as_written(capsys):
    """The `$ bitmix ...` lines in the README's Hardware section run and print what the doc shows
    (hashes and numbers masked, so a grid edit in golden/ does not break this test)."""
    import re
    import shlex

    blocks = re.findall(r"```console\n(.*?)```", section("Hardware"), re.S)
    ran = 0
    for block in blocks:
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ bitmix "):
                continue
            want = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("$ "):
                    break
                want.append(nxt)
            rc = main(shlex.split(line[2:])[1:])
            cap = capsys.readouterr()
            got = (cap.out + cap.err).splitlines()
            assert [_mask(x) for x in got] == [_mask(x) for x in want], line
            assert rc == (2 if any(w.startswith("bitmix: error") for w in want) else 0)
            ran += 1
    assert ran >= 2


def test_doc_python_example_runs():
    import re
    code = re.search(r"```python\n(.*?)```", section("Hardware"), re.S).group(1)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1].startswith("1 ")
