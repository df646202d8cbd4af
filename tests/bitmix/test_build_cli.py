"""`bitmix build` option resolution: the user's options, the board's defaults, the board's clock,
baud rate and LEDs (no tool runs here; tests/fpga/test_boards.py builds bitstreams)."""

import pytest

from bitmix.cli import build_parser, main
from bitmix.cmd_build import board_values, resolve
from bitmix.errors import BitmixError
from fpga.boards import BOARDS


def parse(*argv):
    return build_parser().parse_args(["build", *argv])


def test_device_top_on_icebreaker_gets_spram_the_clock_and_one_led():
    design, board, plan, p = resolve(parse("--board", "icebreaker"))
    assert design.name == "top" and board.name == "icebreaker"
    assert p.weight_mem == "spram"                 # the board's default (30 EBRs are too few)
    assert p.clk_hz == round(plan.sys_hz) == round(BOARDS["icebreaker"].sys_hz)
    assert p.baud == plan.baud and p.link == "uart"
    assert p.leds == 1                             # two LEDs, the first is the heartbeat


def test_user_options_win_over_board_defaults():
    _, _, plan, p = resolve(parse("--board", "icebreaker", "--weight-mem", "bram",
                                  "--clk-mhz", "18", "--rows", "1"))
    assert p.weight_mem == "bram" and p.gemv.rows == 1 and p.clk_hz == 18_000_000


@pytest.mark.parametrize("board,leds", [("ulx3s-85f", 4), ("orangecrab-25f", 2)])
def test_led_count_follows_the_board(board, leds):
    _, _, _, p = resolve(parse("--board", board))
    assert p.leds == leds and p.weight_mem == "bram"


def test_build_refuses_options_of_other_designs(capsys):
    assert main(["build", "--board", "icebreaker", "--design", "echo", "--lanes", "8"]) == 2
    assert "--lanes is not an option of design 'echo'" in capsys.readouterr().err


def test_bad_clock_is_one_line():
    with pytest.raises(BitmixError, match="outside"):
        resolve(parse("--board", "icebreaker", "--clk-mhz", "300"))


def test_board_values_are_what_build_uses():
    """The virtual board can start exactly the top a board build makes from these values."""
    design, _, plan, values = board_values("icebreaker")
    _, _, plan2, p = resolve(parse("--board", "icebreaker"))
    assert design.make_params(values) == p and plan == plan2
    assert values["weight_mem"] == "spram" and values["clk_hz"] == 24_000_000


def test_board_values_refuse_designs_without_a_link():
    with pytest.raises(BitmixError, match="cannot go on a board"):
        board_values("icebreaker", "gemv")
