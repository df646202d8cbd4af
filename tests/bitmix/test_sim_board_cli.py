"""`bitmix sim-board` as the README's walkthrough starts it (section "Virtual board and host
driver"): a background process that prints the device and writes the device file; the README's
Python block runs a quantized layer through it at every precision bit-exact; the board stops when
the driver closes the port."""

import re
import shlex
import subprocess
import sys
import time

from _readme import section


def test_readme_walkthrough_on_the_virtual_board(tmp_path, sim_top):
    sim_top("bytes")                                   # build first (cached): the start is quick
    text = section("Virtual board and host driver")
    cmd = re.search(r"\$ (bitmix sim-board .*) &\n", text).group(1)
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    f = tmp_path / "board.json"
    argv = [str(f) if a == "build/board.json" else a for a in shlex.split(cmd)]
    assert argv[:2] == ["bitmix", "sim-board"] and str(f) in argv
    proc = subprocess.Popen([sys.executable, "-m", "bitmix.cli", *argv[1:], "--report", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while not (f.exists() and f.read_text()) and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        run = subprocess.run([sys.executable, "-c", example.replace("build/board.json", str(f))],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln.split() for ln in run.stdout.splitlines()]
    assert [ln[:2] for ln in lines] == [["0", "True"], ["1", "True"], ["2", "True"]]
    shown = re.search(r"prints `0 True (\d+)`, `1 True (\d+)`, `2 True (\d+)`", text).groups()
    assert [ln[2] for ln in lines] == list(shown)          # the cycles the README quotes
    assert proc.returncode == 0, err
    assert re.search(r"virtual board on /dev/pts/\d+ \(link bytes, clock 12 MHz\)", out)
    assert "stopped (hangup)" in out and "cycles simulated" in out


def test_sim_board_runs_the_board_build_top(sim_top_values):
    """`bitmix sim-board --board icebreaker` simulates the top `bitmix build --board icebreaker`
    builds: its CAPABILITIES answer is what the build's TopParams say, board id included."""
    import pytest

    from bitmix.cli import build_parser
    from bitmix.cmd_build import resolve
    from bitmix.cmd_sim_board import _top_options, board_top_values
    from bitmix.errors import BitmixError
    from golden.protocol import BoardId
    from sw_driver.device import Device
    from verif.sim_board import SimBoard

    args = build_parser().parse_args(["sim-board", "--board", "icebreaker"])
    values = board_top_values({o.dest: getattr(args, o.dest) for o in _top_options()})   # as run()
    *_, built = resolve(build_parser().parse_args(["build", "--board", "icebreaker"]))
    exe, params, manifest = sim_top_values(values, "bytes")
    assert params.replace(link="uart") == built and params.weight_mem == "spram"
    with SimBoard(exe, link="bytes", clk_hz=params.clk_hz, manifest=manifest) as board:
        with Device.open(board.device, expect=built) as dev:     # checks every field against it
            caps = dev.capabilities
    assert caps["board"] == BoardId.ICEBREAKER and caps["clock_hz"] == built.clk_hz
    assert caps["params_hash"] == int(built.hash, 16)
    with pytest.raises(BitmixError, match="--clk-hz is set by --board icebreaker"):
        board_top_values({"board": "icebreaker", "clk_hz": "12000000"})
