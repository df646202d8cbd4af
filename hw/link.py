"""The host link: UART + COBS/CRC-32C frame decoder and encoder (issue 9), the block the FPGA
top puts between its pins and the command unit.

``rx`` → :class:`hw.uart.UARTRx` → receive FIFO → :class:`hw.framing.FrameDecoder` →
``frame``/``verdict``; ``reply`` → :class:`hw.framing.FrameEncoder` → :class:`hw.uart.UARTTx` →
``tx``. The parts' own docs give their timing; a byte the UART drops (framing error, overrun)
makes its frame fail the decoder's checks, and the decoder is in step again at the next
delimiter.

Why a receive FIFO (:data:`RX_FIFO_BYTES`). A UART cannot stall the host, but the frame's consumer
does stall the decoder: the command unit takes no frame bytes while it executes a request and
hands over its answer (several hundred cycles after a full WRITE_MEM). Without a buffer, the bytes
of the next request that arrive meanwhile overrun the UART's one-byte register, so the host would
have to wait for every answer before sending again, leaving the line idle for the whole
turnaround. The FIFO holds what arrives meanwhile, which lets the driver pipeline its weight
writes (sw_driver/protocol.py) and keep the line busy.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered

from hw.framing import FrameDecoder, FrameEncoder
from hw.interfaces import link_signature
from hw.uart import UARTParams, UARTRx, UARTTx

__all__ = ["Link", "LinkParams", "RX_FIFO_BYTES"]

#: Receive FIFO depth in bytes: 64 byte times (2,560 cycles at 40 cycles per byte, the fastest line)
#: cover the longest stall of the command unit with room to spare; one iCE40 EBR / ECP5 DP16KD.
RX_FIFO_BYTES = 64


@dataclass(frozen=True)
class LinkParams:
    """The link's parameters: the UART's (the framing has none: golden.protocol fixes it)."""

    uart: UARTParams

    @classmethod
    def make(cls, *, clk_hz: float, baud: int) -> LinkParams:
        return cls(UARTParams.make(clk_hz=clk_hz, baud=baud))

    @property
    def tag(self) -> str:
        return f"link_div{self.uart.divisor}"


class Link(wiring.Component):
    """UART + frame decoder + frame encoder; ports in :func:`hw.interfaces.link_signature`.

    Parameters
    ----------
    params : LinkParams
        Validated parameters (``LinkParams.make(clk_hz=, baud=)``).
    """

    def __init__(self, params: LinkParams):
        self._params = params
        super().__init__(link_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTRx(self._params.uart)
        m.submodules.tx = tx = UARTTx(self._params.uart)
        m.submodules.decoder = dec = FrameDecoder()
        m.submodules.encoder = enc = FrameEncoder()
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_BYTES)
        wiring.connect(m, rx.data, fifo.w_stream)
        wiring.connect(m, fifo.r_stream, dec.wire)
        wiring.connect(m, dec.frame, wiring.flipped(self.frame))
        wiring.connect(m, dec.verdict, wiring.flipped(self.verdict))
        wiring.connect(m, wiring.flipped(self.reply), enc.frame)
        wiring.connect(m, enc.wire, tx.data)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.frame_error.eq(rx.frame_error),
                     self.overrun.eq(rx.overrun)]
        return m
