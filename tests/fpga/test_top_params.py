"""fpga.top_params.TopParams: validation, derived sizes, the capability report, no Amaranth."""

import subprocess
import sys

import pytest

from bitmix.errors import BitmixError
from fpga.top_params import SPRAM_COUNT, SPRAM_WIDTH, TopParams
from golden.formats import format_table_hash
from golden.protocol import RESPONSES, Command, Region, unpack_bytes


def test_capabilities_report():
    tp = TopParams.make(rows=3, lanes=8, group_size=64, max_k=512, max_n=30, weight_beats=100)
    caps = unpack_bytes(RESPONSES[Command.CAPABILITIES], tp.capabilities_bytes())
    assert caps["params_hash"] == int(tp.hash, 16)
    assert caps["formats_hash"] == int(format_table_hash(), 16)
    lay = tp.gemv.layout
    assert caps["region_bytes"] == [100 * lay.beat_bytes, (512 // 8) * (8 * 8 // 8),
                                    10 * -(-(3 * tp.gemv.row_bits + 1) // 8)]
    assert caps["desc_bytes"] == -(-lay.cmd.size // 8)
    assert caps["clock_hz"] == 12_000_000


def test_hash_ignores_link_mode_only():
    a = TopParams.make(link="uart")
    assert a.hash == TopParams.make(link="bytes").hash
    assert a.hash != TopParams.make(baud=1_000_000).hash
    assert a.hash != TopParams.make(weight_beats=100).hash
    assert a.tag != TopParams.make(link="bytes").tag
    assert TopParams.from_dict(a.describe()) == a


@pytest.mark.parametrize("kw, word", [
    ({"link": "usb"}, "link"), ({"weight_mem": "dram"}, "weight_mem"), ({"leds": 0}, "leds"),
    ({"baud": 5_000_000}, "baud"), ({"weight_beats": 0}, "weight_beats"),
    ({"clk_hz": 1.5e7}, "clk_hz"), ({"rows": 0}, "rows"),
    ({"weight_mem": "spram", "weight_beats": 20000}, "SPRAM depth"),
    ({"weight_mem": "spram", "rows": 4, "lanes": 8}, "SPRAMs side by side"),
])
def test_bad_parameters(kw, word):
    with pytest.raises(BitmixError, match=word):
        TopParams.make(**kw)


def test_spram_fit():
    tp = TopParams.make(weight_mem="spram", weight_beats=16384)
    assert tp.spram_columns * SPRAM_WIDTH >= tp.gemv.layout.weight_bits
    assert tp.spram_columns <= SPRAM_COUNT
    assert tp.region_bytes[Region.WEIGHTS] == 16384 * tp.gemv.layout.beat_bytes


def test_no_amaranth_import():
    code = "import sys, fpga.top_params; assert 'amaranth' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_board_id_in_capabilities():
    """Every board has a protocol id; CAPABILITIES reports it and the hash covers it."""
    import pytest

    from bitmix.errors import BitmixError
    from fpga.boards import BOARDS
    from golden.protocol import BoardId

    plain = TopParams.make()
    assert plain.board == "" and plain.capabilities()["board"] == BoardId.NONE
    for name in BOARDS:
        tp = TopParams.make(board=name)
        assert BoardId(tp.capabilities()["board"]).board_name == name and tp.hash != plain.hash
        assert TopParams.from_dict(tp.describe()) == tp
    with pytest.raises(BitmixError, match="board 'nexys' has no protocol board id"):
        TopParams.make(board="nexys")
