"""`bitmix elaborate --design lut_unit`: lint-clean Verilog and a manifest that carries the LUT
path's stream layouts, supported/refused layouts and cycle model; one-line errors."""

import json

import pytest

from bitmix.cli import main
from golden.bcq_layout import COL_REFUSAL
from hw.lut_params import LutParams


def test_elaborate_lut_unit(tmp_path, capsys):
    out = tmp_path / "hw"
    rc = main(["elaborate", "--design", "lut_unit", "--rows", "2", "--max-planes", "3",
               "--shift-bits", "4", "--max-k", "64", "--max-n", "10", "--out", str(out)])
    assert rc == 0
    assert "lint: passed" in capsys.readouterr().out
    man = json.loads((out / "lut_unit.json").read_text())
    p = LutParams.make(rows=2, max_planes=3, shift_bits=4, max_k=64, max_n=10)
    assert man["parameters"] == p.describe()
    ports = {q["name"]: q for q in man["ports"]}
    assert ports["keys__payload"]["width"] == 2 * 8
    assert ports["scales__payload"]["width"] == 2 * 3 * (2 + 4)
    assert ports["results__payload"]["width"] == 2 * p.row_bits + 1
    assert ports["precision"]["width"] == p.plane_bits
    assert man["layouts"]["refused"]["col"] == COL_REFUSAL
    assert [r["field"] for r in man["packer"]["scales"]] == ["sign", "shift"]
    assert "module lut_unit" in (out / "lut_unit.v").read_text()


@pytest.mark.parametrize("argv,field", [
    (["--rows", "0"], "rows = 0 is out of range"),
    (["--max-k", "100"], "max_k = 100 is not a multiple of 8"),
    (["--apot-terms", "4"], "apot_terms = 4 is out of range"),
    (["--shift-bits", "6"], "shift_bits = 6 allows spans up to 2^63"),
])
def test_bad_lut_parameters_one_line(argv, field, capsys, tmp_path):
    rc = main(["elaborate", "--design", "lut_unit", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and field in err, err
