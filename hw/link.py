"""The host link: UART + COBS/CRC-32C frame decoder and encoder (issue 9), the block the FPGA
top puts between its pins and the command unit.

``rx`` → :class:`hw.uart.UARTRx` → :class:`hw.framing.FrameDecoder` → ``frame``/``verdict``;
``reply`` → :class:`hw.framing.FrameEncoder` → :class:`hw.uart.UARTTx` → ``tx``. Nothing else:
the parts' own docs give their timing; a byte the UART drops (framing error, overrun) makes its
frame fail the decoder's checks, and the decoder is in step again at the next delimiter.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import wiring

from hw.framing import FrameDecoder, FrameEncoder
from hw.interfaces import link_signature
from hw.uart import UARTParams, UARTRx, UARTTx

__all__ = ["Link", "LinkParams"]


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
        wiring.connect(m, rx.data, dec.wire)
        wiring.connect(m, dec.frame, wiring.flipped(self.frame))
        wiring.connect(m, dec.verdict, wiring.flipped(self.verdict))
        wiring.connect(m, wiring.flipped(self.reply), enc.frame)
        wiring.connect(m, enc.wire, tx.data)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.frame_error.eq(rx.frame_error),
                     self.overrun.eq(rx.overrun)]
        return m
