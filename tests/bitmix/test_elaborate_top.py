"""`bitmix elaborate --design top`: Verilog + manifest of the FPGA top in both link modes."""

import json

import pytest

from bitmix.cli import main
from bitmix.designs import DESIGNS
from fpga.top_params import TopParams


@pytest.mark.parametrize("link", ["uart", "bytes"])
def test_elaborate_top(tmp_path, capsys, link):
    out = tmp_path / link
    rc = main(["elaborate", "--design", "top", "--link", link, "--weight-beats", "128",
               "--out", str(out)])
    assert rc == 0
    assert "lint: passed" in capsys.readouterr().out
    man = json.loads((out / "top.json").read_text())
    tp = TopParams.make(link=link, weight_beats=128)
    assert man["parameters"] == tp.describe()
    assert man["params_hash"] == tp.hash
    assert man["capabilities"]["params_hash"] == tp.hash
    ports = {p["name"]: p["width"] for p in man["ports"]}
    pins = ({"rx": 1, "tx": 1} if link == "uart" else
            {"rx_byte__payload": 8, "rx_byte__valid": 1, "rx_byte__ready": 1,
             "tx_byte__payload": 8, "tx_byte__valid": 1, "tx_byte__ready": 1})
    assert ports == {"clk": 1, "rst": 1, "leds": tp.leds, **pins}
    assert man["regions"]["WEIGHTS"]["bytes"] == 128 * tp.gemv.layout.beat_bytes


def test_top_is_registered():
    assert "top" in DESIGNS
    tp = DESIGNS["top"].make_params({o.dest: o.default for o in DESIGNS["top"].options})
    assert tp == TopParams.make()
