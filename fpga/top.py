"""The device: the FPGA top that the boards and the virtual board run (issue 9, docs/architecture.md §5).

```
 rx ─► UART ─► frame decoder ─► CommandUnit ─► frame encoder ─► UART ─► tx
 (link="bytes": rx_byte ─► decoder,  encoder ─► tx_byte)
                                 │  ▲
             weights / activations / results regions (hw.memories.BeatMemory)
                                 │  ▲
                              GemvEngine (hw.gemv)
```

:class:`DeviceTop` is built from :class:`fpga.top_params.TopParams` alone; the wire protocol is
``golden.protocol`` (``bitmix protocol`` prints it). Status LEDs, in order (a board with fewer LEDs
keeps the first ones): 0 a GEMV is running, 1 the last run finished, 2 the last run failed,
3 toggles on every decoded request.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, ResetInserter
from amaranth.lib import wiring

from fpga.top_params import TopParams
from golden.protocol import EngineState, Region
from hw.command_unit import CommandUnit
from hw.framing import FrameDecoder, FrameEncoder
from hw.gemv import GemvEngine
from hw.interfaces import device_top_signature
from hw.link import Link, LinkParams
from hw.memories import BeatMemory
from hw.uart_params import UARTParams

__all__ = ["DeviceTop", "LED_NAMES"]

#: What each status LED shows, in port bit order.
LED_NAMES = ("running", "done", "error", "activity")


class DeviceTop(wiring.Component):
    """The FPGA top: host link, command unit, memories and GEMV engine; ports in
    :func:`hw.interfaces.device_top_signature`.

    Parameters
    ----------
    params : TopParams
        Validated parameters (``TopParams.make(...)``).
    primitives : bool
        Instantiate vendor primitives (SB_SPRAM256KA for ``weight_mem="spram"``): an iCE40 build.
        Off (the default), behavioural models stand in, so Verilator simulates the same top.
    external_weights : bool
        The weights region as ``hw.memories.BeatMemory(external=True)``: an instance of a Verilog
        module the virtual board compiles alongside (``verif.sim_board`` uses it for model-sized
        regions, whose Amaranth zero initialiser would take Yosys hours). ``weight_mem="bram"``.

    Members
    -------
    rx, tx : In(1), Out(1)
        ``link="uart"``: the UART lines.
    rx_byte, tx_byte : In(stream.Signature(8)), Out(stream.Signature(8))
        ``link="bytes"``: line bytes into the frame decoder and out of the frame encoder.
    leds : Out(params.leds)
        Status LEDs (:data:`LED_NAMES`).
    """

    def __init__(self, params: TopParams, *, primitives: bool = False, external_weights: bool = False):
        self._params = params
        self._primitives = primitives
        self._external_weights = external_weights
        super().__init__(device_top_signature(params))

    @property
    def params(self) -> TopParams:
        return self._params

    def elaborate(self, platform):
        tp = self._params
        m = Module()
        m.submodules.cu = cu = CommandUnit(tp)
        if tp.link == "uart":
            m.submodules.link = link = Link(LinkParams(UARTParams.make(clk_hz=tp.clk_hz, baud=tp.baud)))
            m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
            dec_frame, dec_verdict, enc_frame = link.frame, link.verdict, link.reply
        else:
            m.submodules.decoder = dec = FrameDecoder()
            m.submodules.encoder = enc = FrameEncoder()
            wiring.connect(m, wiring.flipped(self.rx_byte), dec.wire)
            wiring.connect(m, enc.wire, wiring.flipped(self.tx_byte))
            dec_frame, dec_verdict, enc_frame = dec.frame, dec.verdict, enc.frame
        wiring.connect(m, dec_frame, cu.frame)
        wiring.connect(m, dec_verdict, cu.verdict)
        wiring.connect(m, cu.reply, enc_frame)

        engine = GemvEngine(tp.gemv)
        m.submodules.engine = ResetInserter(cu.engine_reset)(engine)
        wiring.connect(m, cu.engine, engine)

        for r in Region:
            kind = tp.weight_mem if r == Region.WEIGHTS else "bram"
            mem = BeatMemory(tp.region_beats[r], tp.region_beat_bytes[r], kind,
                             primitive=self._primitives and kind == "spram",
                             external=self._external_weights and r == Region.WEIGHTS)
            m.submodules[f"{r.name.lower()}_mem"] = mem
            wiring.connect(m, getattr(cu, f"{r.name.lower()}_mem"), mem)

        leds = Cat(cu.state == EngineState.RUNNING, cu.state == EngineState.DONE,
                   cu.state == EngineState.ERROR, cu.activity)
        m.d.comb += self.leds.eq(leds[:tp.leds])
        return m
