"""bitmix.argtypes: range-checked option values, reported as one-line errors naming the option."""

import pytest

from bitmix.argtypes import check_range, float_in_range, int_in_range
from bitmix.cli import main
from bitmix.errors import BitmixError


def test_int_in_range_converts_and_checks():
    conv = int_in_range("--window", 2)
    assert conv("256") == 256 and conv(" 2 ") == 2 and conv("0x10") == 16 and conv("08") == 8
    with pytest.raises(BitmixError, match=r"^--window must be at least 2, got 1$"):
        conv("1")
    with pytest.raises(BitmixError, match=r"^--window must be an integer, got '2.5'$"):
        conv("2.5")
    both = int_in_range("--lanes", 1, 64)
    assert both("64") == 64
    with pytest.raises(BitmixError, match=r"^--lanes must be between 1 and 64, got 65$"):
        both("65")
    with pytest.raises(BitmixError, match=r"^--x must be at most 3, got 4$"):
        int_in_range("--x", hi=3)("4")


def test_float_in_range():
    conv = float_in_range("--bit-budget", 1.0, 16.0)
    assert conv("2.2") == 2.2 and conv("16") == 16.0
    for bad, msg in [("0.5", "between 1.0 and 16.0, got 0.5"), ("nan", "finite"), ("two", "a number")]:
        with pytest.raises(BitmixError, match=msg):
            conv(bad)
    assert check_range("--y", 5) == 5              # no bounds: anything goes


@pytest.mark.parametrize("argv,msg", [
    (["eval", "--window", "1"], "--window must be at least 2, got 1"),
    (["eval", "--max-windows", "0"], "--max-windows must be at least 1, got 0"),
    (["eval", "--max-new-tokens", "-1"], "--max-new-tokens must be at least 0, got -1"),
    (["quantize", "--threads", "0"], "--threads must be at least 1, got 0"),
    (["quantize", "--bit-budget", "17"], "--bit-budget must be between 1.0 and 16.0, got 17.0"),
    (["quantize", "--group-size", "-4"], "--group-size must be at least 1, got -4"),
    (["quantize", "--calib-seqlen", "1"], "--calib-seqlen must be at least 2, got 1"),
    (["bench", "quality", "--calib-samples", "0"], "--calib-samples must be at least 1, got 0"),
    (["bench", "quality", "--window", "x"], "--window must be an integer, got 'x'"),
    (["bench", "minilm", "--threads", "0"], "--threads must be at least 1, got 0"),
    (["quantize", "--seed", "-3"], "--seed must be between 0 and 4294967295, got -3"),
    (["train-scheduler", "--seed", "4294967296"], "--seed must be between 0 and 4294967295, got 4294967296"),
    (["bench", "hw", "--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    (["bench", "link", "--flip", "2"], "--flip must be between 0.0 and 1.0, got 2.0"),
    (["bench", "link", "--drop", "-0.1"], "--drop must be between 0.0 and 1.0, got -0.1"),
])
def test_commands_report_bad_values_on_one_line(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"bitmix: error: {msg}\n"
