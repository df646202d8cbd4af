"""The virtual board: the FPGA top compiled by Verilator with a C++ main loop (``board.cpp``, not
cocotb, for speed), its host link bridged to a pseudo-terminal that the driver opens exactly as it
opens ``/dev/ttyUSB0``.

Link modes (a build each; the top is elaborated with the matching ``link`` parameter):

``bytes`` (default)
    Bytes go straight into the top's frame decoder (``rx_byte``) and come out of its encoder
    (``tx_byte``), one per clock cycle at most, as LiteX's ``serial2tcp`` does. The link is as
    fast as the simulation, so a user's GEMV on the virtual board takes seconds; this is what
    ``bitmix sim-board`` starts unless told otherwise.
``uart``
    The real UART pins: a C++ model of the host's UART drives ``rx`` and samples ``tx`` (8N1,
    mid-bit) at ``divisor`` = clk / baud cycles per bit, cycle-accurate, so link timing (payload
    efficiency at 3 Mbaud, round trips) is what a board with the same clock and baud would see.

The main loop ticks the clock in chunks of 512 cycles and moves bytes between the pty (raw,
non-blocking) and its buffers between chunks. When no byte has been pending or moving for
``idle_after`` cycles (default 2^22), it stops the clock and sleeps in ``poll()`` until the host
writes: an idle board costs no CPU, and simulated time simply does not pass while it sleeps (a
GEMV longer than ``idle_after`` cycles is advanced by each STATUS poll; results are unaffected).
It stops cleanly on SIGINT/SIGTERM and when the client closes the pty (hang-up), unless
``persist``; each instance opens its own pty. Statistics (simulated cycles, cycles per second,
bytes, frames, round trips in cycles) are JSON lines on its stdout (on SIGUSR1, every ``report``
seconds and at exit); SIGUSR2 starts a measurement window (:meth:`SimBoard.mark`) whose first
host byte in and last device byte out are reported in cycles. :class:`SimBoard` reads them.

Builds are cached under ``build/sim_board/<tag>/`` (the tag names the link mode and the top's
parameter hash) and rebuilt only when the Verilog or the harness change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring

from bitmix.errors import BitmixError

__all__ = ["LINKS", "DEFAULT_LINK", "VERILATOR_FLAGS", "harness_source", "build_board", "build_top",
           "PowerOnReset", "SimBoard"]

#: Link modes; the first is the default.
LINKS = ("bytes", "uart")
DEFAULT_LINK = LINKS[0]
#: Verilator options for speed (Veripool's guide): no X randomisation, no assertions; warnings
#: are not fatal here (`bitmix elaborate` lints the top).
VERILATOR_FLAGS = ("--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
                   "-MAKEFLAGS", "OPT_FAST=-O3 OPT_GLOBAL=-O2")
#: Verilated module name of the top.
TOP = "top"
_CONFIG = '#include "board_config.h"\n'


def harness_source(link: str) -> str:
    """``board.cpp`` with its configuration (Verilated top, link mode) filled in."""
    if link not in LINKS:
        raise BitmixError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
    cpp = Path(__file__).with_name("board.cpp").read_text()
    config = f'#include "V{TOP}.h"\nusing Top = V{TOP};\n#define LINK_UART {int(link == "uart")}\n'
    assert _CONFIG in cpp
    return cpp.replace(_CONFIG, config)


class PowerOnReset(wiring.Component):
    """The top with its reset generated inside (held for 4 cycles after power-up) instead of a
    ``rst`` port; otherwise the same ports, plus ``clk``.

    Why: Amaranth writes every register's next-state logic as combinational Verilog that reads
    ``rst``. With ``rst`` a top-level input, Verilator evaluates all of it in its input region on
    every ``eval()``, twice per clock cycle; driven by a register, it runs once per rising edge.
    That made the default top 1.7x faster to simulate (measured on 5 M cycles).

    Members
    -------
    clk : In(1)
        The clock.
    (every member of ``top``'s signature)
    """

    def __init__(self, top):
        self._top = top
        super().__init__(wiring.Signature({**dict(top.signature.members.items()), "clk": wiring.In(1)}))

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        count = Signal(3, init=4)
        m.d.comb += [ClockSignal("sync").eq(self.clk), ClockSignal("por").eq(self.clk),
                     ResetSignal("sync").eq(count != 0)]
        with m.If(count != 0):
            m.d.por += count.eq(count - 1)
        m.submodules.top = top = self._top
        for name, member in top.signature.members.items():
            outer, inner = getattr(self, name), getattr(top, name)
            if member.is_signature:
                wiring.connect(m, wiring.flipped(outer), inner)
            elif member.flow == wiring.In:
                m.d.comb += inner.eq(outer)
            else:
                m.d.comb += outer.eq(inner)
        return m


def build_board(component, *, tag: str, info: dict, link: str) -> Path:
    """Compile ``component`` (ports per ``link``: ``clk, rst, rx, tx`` or ``rx_byte, tx_byte``)
    inside :class:`PowerOnReset` with the board harness (and :data:`BEAT_MEMORY_V`, the model of
    ``hw.memories.BeatMemory(external=True)``); returns the executable (the top's manifest is
    ``../rtl/top.json``)."""
    from verif.gemv_cpp import compile_harness

    exe = compile_harness(PowerOnReset(component), top=TOP, tag=tag, info=info,
                          src=harness_source(link), opt="-O3 -march=native", flags=VERILATOR_FLAGS,
                          subdir="sim_board", verilog=(BEAT_MEMORY_V,))
    # the manifest lists the model's real ports: clk once, no rst (generated inside)
    mpath = exe.parent.parent / "rtl" / f"{TOP}.json"
    man = json.loads(mpath.read_text())
    ports = [q for q in man["ports"] if q["name"] != "rst"]
    man["ports"] = [q for i, q in enumerate(ports) if q["name"] != "clk" or i == 0]
    man["reset"] = "generated inside the model (verif.sim_board.PowerOnReset), 4 cycles"
    mpath.write_text(json.dumps(man, indent=1) + "\n")
    return exe


def build_top(values: dict | None = None, *, link: str = DEFAULT_LINK):
    """Build the registry's ``top`` design with option ``values`` (defaults for the rest) and
    ``link``; returns ``(executable, params, manifest path)``."""
    from bitmix.designs import get_design

    design = get_design("top")
    vals = {o.dest: o.default for o in design.options}
    vals.update({k: v for k, v in (values or {}).items() if v is not None})
    if "link" in vals:
        vals["link"] = link
    params = design.make_params(vals)
    tag = f"{TOP}_{link}_{getattr(params, 'hash', None) or params.tag}"
    exe = _BUILT.get(tag)
    if exe is None or not exe.exists():          # elaborating the top takes seconds: once per process
        from verif.runner import build_root

        # a model-sized weights region's zero initialiser takes Yosys many minutes: such a build
        # is reused without elaborating again while its sources are the same (bitmix demo
        # --weight-beats); smaller tops elaborate in seconds and compare the Verilog
        big = getattr(params, "weight_beats", 0) > REUSE_WEIGHT_BEATS
        stamp = build_root() / "sim_board" / tag / "sources.sha256"
        digest = _sources_digest() if big else None
        cached = build_root() / "sim_board" / tag / "obj" / f"V{TOP}"
        if big and cached.exists() and stamp.exists() and stamp.read_text() == digest:
            exe = _BUILT[tag] = cached
        else:
            if getattr(params, "weight_beats", 0) > EXTERNAL_WEIGHT_BEATS and params.weight_mem == "bram":
                from fpga.top import DeviceTop

                component = DeviceTop(params, external_weights=True)
            else:
                component = design.build(params)
            exe = _BUILT[tag] = build_board(component, tag=tag, info=design.info(params), link=link)
            if big:
                stamp.write_text(digest)
    return exe, params, exe.parent.parent / "rtl" / f"{TOP}.json"


#: Weights regions deeper than this (beats) reuse a build by its sources' digest.
REUSE_WEIGHT_BEATS = 1 << 16
#: Weights regions deeper than this (beats) are the Verilog model :data:`BEAT_MEMORY_V`
#: (``hw.memories.BeatMemory(external=True)``), not Amaranth's memory: its zero initialiser alone
#: takes Yosys minutes at 16K beats of 150 bytes and grows faster than linearly.
EXTERNAL_WEIGHT_BEATS = 1 << 14
#: The Verilog of ``hw.memories.EXTERNAL_MODULE``.
BEAT_MEMORY_V = Path(__file__).with_name("beat_memory.v")


def _sources_digest() -> str:
    """SHA-256 of every source the virtual board's Verilog and harness come from — the project
    modules a fresh interpreter loads to build the top (gateware, top, golden's layouts, design
    registry, elaboration, this harness), its C++ — and the Amaranth version."""
    import hashlib
    import importlib.metadata
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, json, bitmix.designs, bitmix.elaborate, fpga.top, verif.gemv_cpp, "
            "verif.sim_board; print(json.dumps(sorted({getattr(m, '__file__', None) or '' "
            "for m in list(sys.modules.values())})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)}).stdout
    files = [Path(f) for f in json.loads(out) if f.startswith(str(root) + os.sep)]
    files += sorted((root / "verif" / "sim_board").glob("*.cpp")) + [BEAT_MEMORY_V]
    h = hashlib.sha256(importlib.metadata.version("amaranth").encode())
    for f in sorted(set(files)):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


_BUILT: dict[str, Path] = {}


class SimBoard:
    """A running virtual board (a child process); a context manager that stops it on exit.

    Parameters
    ----------
    exe : Path
        From :func:`build_board` / :func:`build_top`.
    link : str
        The mode ``exe`` was built for (``"bytes"`` or ``"uart"``).
    clk_hz : float
        The top's clock (reported; simulated seconds = cycles / clk_hz).
    divisor : int, optional
        Clock cycles per UART bit (``uart`` mode only).
    idle_after, persist, report, max_cycles
        See the module doc; ``persist`` keeps the board running across client hang-ups.

    Members
    -------
    device : str
        The pty path to open (``/dev/pts/N``).
    manifest : Path or None
        The top's elaboration manifest (its parameters).
    events : list of dict
        Every JSON line the board printed so far.
    params : fpga.top_params.TopParams or None
        The top's parameters, when started by :func:`bitmix.cmd_sim_board.start_board`.
    """

    def __init__(self, exe: Path, *, link: str, clk_hz: float, divisor: int | None = None,
                 idle_after: int | None = None, persist: bool = False, report: float | None = None,
                 max_cycles: int | None = None, manifest: Path | None = None, start_timeout: float = 30):
        if link not in LINKS:
            raise BitmixError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
        if link == "uart" and not divisor:
            raise BitmixError("the uart link needs the UART divisor (clock cycles per bit)")
        self._params = {"link": link, "clk_hz": clk_hz, "divisor": divisor}
        self.link, self.clk_hz, self.divisor, self.manifest = link, clk_hz, divisor, manifest
        self.params = None
        cmd = [str(exe), "--clk-hz", str(clk_hz)]
        if divisor:
            cmd += ["--divisor", str(divisor)]
        if idle_after is not None:
            cmd += ["--idle-after", str(idle_after)]
        if persist:
            cmd.append("--persist")
        if report:
            cmd += ["--report", str(report)]
        if max_cycles:
            cmd += ["--max-cycles", str(max_cycles)]
        self.events: list[dict] = []
        self._cv = threading.Condition()
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                      bufsize=1, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self._wait(lambda e: e["event"] in ("ready", "exit"), start_timeout)
        if ready is None or ready["event"] != "ready":
            self.close()
            raise BitmixError(f"virtual board {exe} did not start (events: {self.events})")
        self.device: str = ready["device"]

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "text", "text": line.rstrip()}
            with self._cv:
                self.events.append(ev)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def _wait(self, pred, timeout: float, start: int = 0) -> dict | None:
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self.events[start:]:
                    if pred(ev):
                        return ev
                start = len(self.events)
                left = end - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and start == len(self.events)):
                    return None
                self._cv.wait(min(left, 0.2))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def stats(self, timeout: float = 10) -> dict:
        """A fresh statistics line (simulated cycles, bytes, frames, round trips)."""
        if not self.running:
            return self.exit_event() or {}
        with self._cv:
            start = len(self.events)
        os.kill(self._proc.pid, signal.SIGUSR1)
        ev = self._wait(lambda e: e["event"] in ("stats", "exit"), timeout, start)
        if ev is None:
            raise BitmixError(f"virtual board (pid {self.pid}) did not report its statistics")
        return ev

    def mark(self, timeout: float = 10) -> dict:
        """Start a measurement window: the next statistics report ``window_first_rx_cycle`` (the
        cycle the first host byte after the mark began to enter), ``window_last_tx_cycle`` (the
        last device byte out) and the window's byte counts; round-trip statistics restart."""
        with self._cv:
            start = len(self.events)
        os.kill(self._proc.pid, signal.SIGUSR2)
        ev = self._wait(lambda e: e["event"] in ("mark", "exit"), timeout, start)
        if ev is None or ev["event"] != "mark":
            raise BitmixError(f"virtual board (pid {self.pid}) did not take the mark")
        return ev

    def exit_event(self) -> dict | None:
        return next((e for e in self.events if e["event"] == "exit"), None)

    def wait(self, timeout: float) -> dict | None:
        """Wait for the board to exit by itself (hang-up, max cycles); its exit event."""
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return self.exit_event()

    def close(self, timeout: float = 10) -> dict | None:
        """Stop the board (SIGTERM, then SIGKILL after ``timeout``); its exit event."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)
        if self._proc.stdout:
            self._proc.stdout.close()
        return self.exit_event()

    def __enter__(self) -> SimBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
