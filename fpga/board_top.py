"""The board top: oscillator -> PLL -> ``sync`` domain with a synchronised reset, the host link
pins and the LEDs around any core with ``rx``/``tx``/``leds`` ports.

    from fpga.boards import get_board, clock_plan
    from fpga.board_top import BoardTop, EchoCore
    board = get_board("icebreaker")
    plan = clock_plan(board)
    top = BoardTop(board, plan, EchoCore(plan.uart))
    board.platform_class()().build(top, do_build=False)

The core sees one clock domain, ``sync``, at ``plan.sys_hz``, held in reset until the PLL has
locked (the reset is released synchronously, two flip-flops after LOCK rises). The first LED is
the board's heartbeat (about 1 Hz while the PLL runs; it stays dark in reset); the others show
the core's ``leds`` bits, in order.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Const, Elaboratable, Instance, Module, Shape, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from bitmix.errors import BitmixError

__all__ = ["BoardTop", "EchoCore", "echo_signature", "HEARTBEAT_HZ"]

#: Blink rate of the heartbeat LED.
HEARTBEAT_HZ = 1


def echo_signature(leds: int = 2) -> wiring.Signature:
    """The ports a board top needs from its core.

    Members
    -------
    rx : In(1)
        UART receive line (idle high), asynchronous to ``sync``.
    tx : Out(1)
        UART transmit line (idle high).
    leds : Out(leds)
        Status lights, shown on the board's LEDs after the heartbeat.
    """
    return wiring.Signature({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(leds)})


class EchoCore(wiring.Component):
    """Link self-test core: every byte received is sent back (``bitmix build --design echo``).

    It proves a board's clock, reset, UART pins and baud divisor before the engine is loaded.
    ``leds[0]`` toggles on each byte received, ``leds[1]`` lights after a UART framing error.

    Parameters
    ----------
    params : hw.uart.UARTParams
        Validated UART parameters (divisor for the board's system clock).
    """

    def __init__(self, params):
        self._params = params
        super().__init__(echo_signature(2))

    def elaborate(self, platform):
        from hw.uart import UART

        m = Module()
        m.submodules.uart = uart = UART(self._params)
        wiring.connect(m, uart.rx_data, uart.tx_data)
        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        with m.If(uart.rx_data.valid & uart.rx_data.ready):
            m.d.sync += self.leds[0].eq(~self.leds[0])
        with m.If(uart.frame_error):
            m.d.sync += self.leds[1].eq(1)
        return m


class BoardTop(Elaboratable):
    """Clock, reset, link pins and LEDs of one board around ``core``.

    Parameters
    ----------
    board : fpga.boards.Board
        The board (its PLL family, oscillator resource and LEDs).
    plan : fpga.boards.ClockPlan
        PLL dividers and the system clock the core runs at.
    core : wiring.Component
        Has ``rx: In(1)``, ``tx: Out(1)`` and optionally ``leds: Out(n)`` (see
        :func:`echo_signature`); anything else is an error here, before any build.
    """

    def __init__(self, board, plan, core):
        members = dict(core.signature.members)
        for name, flow in (("rx", In), ("tx", Out)):
            mem = members.get(name)
            if mem is None or not mem.is_port or mem.flow != flow or Shape.cast(mem.shape).width != 1:
                self._MustUse__silence = True       # refused: no "created but never used" warning
                raise BitmixError(f"the core {type(core).__name__} has no {name}: "
                                  f"{flow.name}(1) port; a board top needs rx/tx")
        self._board, self._plan, self._core = board, plan, core

    def elaborate(self, platform):
        m = Module()
        board, plan = self._board, self._plan
        m.submodules.core = core = self._core

        # ------------------------------------------------------------------ clock and reset
        lock = Signal()
        sys_clk = Signal()          # the PLL output
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.d.comb += cd_sync.clk.eq(sys_clk)
        osc = platform.request(platform.default_clk, dir="-")
        params = {f"p_{k}": v for k, v in plan.pll.params().items()}
        if board.family == "ice40":
            # SB_PLL40_PAD takes the oscillator pin itself (the iCEBreaker's clock pin is the
            # PLL's dedicated input); PLLOUTGLOBAL drives a global buffer.
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", **params, i_PACKAGEPIN=osc.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=sys_clk, o_LOCK=lock)
        elif board.family == "ecp5":
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            m.submodules.pll = Instance(
                "EHXPLLL", **params,
                a_FREQUENCY_PIN_CLKI=f"{plan.osc_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{plan.sys_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD", p_CLKOP_ENABLE="ENABLED",
                i_CLKI=osc_buf.i, i_CLKFB=sys_clk, i_RST=Const(0), i_STDBY=Const(0),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0), o_CLKOP=sys_clk, o_LOCK=lock,
                **{f"o_{out}": self._extra_domain(m, dom)
                   for out, dom in zip(("CLKOS", "CLKOS2"), self._extra_domains())})
        else:
            raise BitmixError(f"no board top for FPGA family {board.family!r}")
        # no add_clock_constraint: nextpnr derives the PLL output's constraint from the input
        # pin's and the dividers ("Derived frequency constraint ... for net clk"), and the
        # name Amaranth would give the net does not survive Yosys' flattening.
        m.submodules.reset_sync = ResetSynchronizer(~lock, domain="sync")
        for dom in self._extra_domains():
            m.submodules[f"reset_sync_{dom}"] = ResetSynchronizer(~lock, domain=dom)

        # ------------------------------------------------------------------ host link pins
        if board.link == "uart":
            uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
            m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
            m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
            m.d.comb += [core.rx.eq(rx_buf.i), tx_buf.o.eq(core.tx)]
        elif board.link == "usb-acm":
            from fpga.usb_serial import UsbSerialBridge

            # LUNA's gateware PHY drives .o/.oe of the D+/D- pins itself
            m.submodules.usb_serial = bridge = UsbSerialBridge(plan.uart,
                                                               platform.request("usb", 0))
            m.d.comb += [core.rx.eq(bridge.to_core), bridge.from_core.eq(core.tx)]
        else:
            raise BitmixError(f"board {board.name}: unknown link {board.link!r}")

        # ------------------------------------------------------------------ LEDs
        lights = [self._heartbeat(m, plan.sys_hz)]
        if "leds" in core.signature.members:
            lights += [core.leds[i] for i in range(len(core.leds))]
        for i, (port, value) in enumerate(zip(self._led_ports(platform), lights)):
            m.submodules[f"led{i}"] = buf = io.Buffer("o", port)
            m.d.comb += buf.o.eq(value)
        return m

    def _extra_domains(self) -> tuple:
        """Clock domains besides ``sync`` the link needs, on the PLL's secondary outputs."""
        return ("usb_io", "usb") if self._board.link == "usb-acm" else ()

    @staticmethod
    def _extra_domain(m, name) -> Signal:
        clk = Signal(name=f"{name}_clk")
        m.domains += (cd := ClockDomain(name))
        m.d.comb += cd.clk.eq(clk)
        return clk

    @staticmethod
    def _heartbeat(m, sys_hz) -> Signal:
        half = max(1, round(sys_hz / HEARTBEAT_HZ / 2))
        count = Signal(range(half))
        beat = Signal()
        with m.If(count == half - 1):
            m.d.sync += [count.eq(0), beat.eq(~beat)]
        with m.Else():
            m.d.sync += count.eq(count + 1)
        return beat

    def _led_ports(self, platform):
        """The IO port of every LED, in the board's order (an RGB LED gives g, r, b)."""
        ports = []
        for name, num in self._board.leds:
            res = platform.request(name, num, dir="-")
            if isinstance(res, io.PortLike):
                ports.append(res)
            else:                                   # RGB LED: three subsignals
                ports += [getattr(res, c) for c in ("g", "r", "b")]
        return ports
