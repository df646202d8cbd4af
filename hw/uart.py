"""8N1 UART receiver and transmitter with ``amaranth.lib.stream`` byte streams (host link).

The host link of the FPGA top (docs/architecture.md §5) is a UART at up to 3 Mbaud. Neither
Amaranth's standard library nor ``luna-usb`` ships a receiver with a stream interface for
Amaranth 0.5 (LUNA's UART is a transmitter with its own stream class), so it is written here.

The receiver recovers from anything on the line without a reset: a start bit that does not
last half a bit time is a glitch and is ignored; a missing stop bit is a framing error (the byte
is dropped, ``frame_error`` pulses) and the receiver waits for the line to return to idle before
it looks for the next start bit, so a line held low (break) yields one error, not a stream of
zero bytes; a byte that arrives while the previous one was not taken is dropped and ``overrun``
pulses. Higher layers (COBS framing, CRC) see dropped bytes as a corrupted frame and resynchronise
at the next delimiter.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.uart_params import UARTParams

__all__ = ["UARTParams", "UARTRx", "UARTTx", "UART", "uart_rx_signature", "uart_tx_signature",
           "uart_signature"]

#: Receiver states.
IDLE, START, DATA, STOP, BREAK = 1, 2, 3, 4, 5


def uart_rx_signature() -> wiring.Signature:
    """UART receiver.

    Members
    -------
    rx : In(1)
        The line (idle high), asynchronous: it is synchronised by two flip-flops.
    data : Out(stream.Signature(8))
        Received bytes, from a register held until taken.
    frame_error : Out(1)
        One-cycle pulse: a byte without its stop bit was dropped.
    overrun : Out(1)
        One-cycle pulse: a byte was dropped because the previous one had not been taken.
    """
    return wiring.Signature({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                             "frame_error": Out(1), "overrun": Out(1)})


def uart_tx_signature() -> wiring.Signature:
    """UART transmitter.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; one is taken when the previous one's stop bit has been sent.
    tx : Out(1)
        The line (idle high).
    """
    return wiring.Signature({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})


def uart_signature() -> wiring.Signature:
    """Receiver and transmitter side by side (what a top level instantiates).

    Members
    -------
    rx : In(1)
        Receive line (idle high).
    tx : Out(1)
        Transmit line (idle high).
    rx_data : Out(stream.Signature(8))
        Received bytes.
    tx_data : In(stream.Signature(8))
        Bytes to send.
    frame_error, overrun : Out(1)
        The receiver's one-cycle error pulses (see :func:`uart_rx_signature`).
    """
    return wiring.Signature({"rx": In(1, init=1), "tx": Out(1, init=1),
                             "rx_data": Out(stream.Signature(8)), "tx_data": In(stream.Signature(8)),
                             "frame_error": Out(1), "overrun": Out(1)})


class UARTRx(wiring.Component):
    """8N1 receiver; ports in :func:`uart_rx_signature`.

    Parameters
    ----------
    params : UARTParams
        Validated parameters (``UARTParams.make(clk_hz=, baud=)``).
    """

    def __init__(self, params: UARTParams):
        self._params = params
        super().__init__(uart_rx_signature())

    def elaborate(self, platform):
        m = Module()
        div = self._params.divisor
        sync1, line = Signal(init=1), Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]

        timer = Signal(range(div))
        bit = Signal(range(9))
        shift = Signal(8)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        # explicit state codes from 1 (Yosys writes `state == 0` as `!state`, a lint warning) in an
        # If chain (Yosys drops an empty Switch default, another lint warning)
        state = Signal(range(BREAK + 1), init=IDLE)
        with m.If(state == IDLE):
            with m.If(~line):
                m.d.sync += [timer.eq(div // 2 - 1), state.eq(START)]
        with m.Elif(state == START):              # to the middle of the start bit
            m.d.sync += timer.eq(timer - 1)
            with m.If(~timer.any()):
                with m.If(line):
                    m.d.sync += state.eq(IDLE)       # shorter than half a bit: a glitch
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0), state.eq(DATA)]
        with m.Elif(state == DATA):               # sample each data bit in its middle, LSB first
            m.d.sync += timer.eq(timer - 1)
            with m.If(~timer.any()):
                m.d.sync += [timer.eq(div - 1), shift.eq(Cat(shift[1:], line)),
                             bit.eq(bit + 1)]
                with m.If(bit == 7):
                    m.d.sync += state.eq(STOP)
        with m.Elif(state == STOP):
            m.d.sync += timer.eq(timer - 1)
            with m.If(~timer.any()):
                with m.If(~line):
                    m.d.comb += self.frame_error.eq(1)
                    m.d.sync += state.eq(BREAK)
                with m.Else():
                    with m.If(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                    m.d.sync += state.eq(IDLE)
        with m.Elif(state == BREAK):              # after a framing error, wait for an idle line
            with m.If(line):
                m.d.sync += state.eq(IDLE)
        with m.Else():                       # unreachable codes (e.g. an upset) recover
            m.d.sync += state.eq(IDLE)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter; ports in :func:`uart_tx_signature`.

    Parameters
    ----------
    params : UARTParams
        Validated parameters (``UARTParams.make(clk_hz=, baud=)``).
    """

    def __init__(self, params: UARTParams):
        self._params = params
        super().__init__(uart_tx_signature())

    def elaborate(self, platform):
        m = Module()
        div = self._params.divisor
        timer = Signal(range(div))
        left = Signal(range(11))             # bits still to send of the current frame
        shift = Signal(10, init=0x3FF)
        m.d.comb += self.tx.eq(shift[0])
        done = Signal()                      # the line is idle, or the stop bit ends this cycle
        m.d.comb += [done.eq(~left.any() | ((left == 1) & ~timer.any())),
                     self.data.ready.eq(done & ~ResetSignal())]     # no transfer during reset
        with m.If(left.any()):
            m.d.sync += timer.eq(timer - 1)
            with m.If(~timer.any()):
                m.d.sync += [timer.eq(div - 1), shift.eq(Cat(shift[1:], 1)), left.eq(left - 1)]
        with m.If(self.data.valid & self.data.ready):   # next frame right after the stop bit
            m.d.sync += [shift.eq(Cat(0, self.data.payload, 1)), left.eq(10), timer.eq(div - 1)]
        return m


class UART(wiring.Component):
    """8N1 receiver + transmitter; ports in :func:`uart_signature`.

    Parameters
    ----------
    params : UARTParams
        Validated parameters (``UARTParams.make(clk_hz=, baud=)``).
    """

    def __init__(self, params: UARTParams):
        self._params = params
        super().__init__(uart_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self._params)
        m.submodules.tx = tx = UARTTx(self._params)
        wiring.connect(m, rx.data, wiring.flipped(self.rx_data))
        wiring.connect(m, wiring.flipped(self.tx_data), tx.data)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.frame_error.eq(rx.frame_error),
                     self.overrun.eq(rx.overrun)]
        return m
