"""USB CDC-ACM serial in gateware (LUNA) as the host link of boards without a USB-UART chip
(OrangeCrab): the host sees ``/dev/ttyACM*`` and the same driver works unchanged.

The core keeps its UART pins: this bridge is the far end of them, inside the FPGA. Bytes from
the host leave LUNA's ``USBSerialDevice`` (``usb`` domain, 12 MHz), cross to ``sync`` through an
``AsyncFIFO`` and are sent to the core's ``rx`` line by a :class:`hw.uart.UARTTx`; the core's
``tx`` line is read by a :class:`hw.uart.UARTRx` and its bytes cross back the same way. The
core needs no change and its baud divisor is the board's. A byte going to the host ends a USB
packet (``last``) when it is the wire protocol's frame delimiter or when nothing follows it
within :data:`FLUSH_CYCLES` (it is held that long), so a reply frame leaves as one transfer and
no byte waits for a full 64-byte packet.

Clock domains (made by :class:`fpga.board_top.BoardTop` from the same PLL VCO, so they are
phase-related, as LUNA's gateware PHY requires): ``usb_io`` 48 MHz, ``usb`` 12 MHz.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["UsbSerialBridge", "USB_IO_HZ", "USB_HZ", "USB_VID", "USB_PID", "FLUSH_CYCLES"]

USB_IO_HZ = 48e6
USB_HZ = 12e6
#: pid.codes' test VID:PID (1209:0001); set your own for a product.
USB_VID, USB_PID = 0x1209, 0x0001
#: ``usb`` cycles without a new byte after which a short packet is sent (about 20 us).
FLUSH_CYCLES = 256
#: depth of each clock-crossing FIFO (bytes)
FIFO_DEPTH = 64


class UsbSerialBridge(wiring.Component):
    """LUNA CDC-ACM device <-> UART lines in the ``sync`` domain.

    Parameters
    ----------
    uart : hw.uart.UARTParams
        Divisor of the lines (the core's own).
    bus : platform resource
        The board's ``usb`` resource (``d_p``, ``d_n``, ``pullup``), requested with the
        platform's default directions, as LUNA's gateware PHY reads ``.i``/``.o``/``.oe``.

    Members
    -------
    to_core : Out(1)
        The line into the core's ``rx`` (idle high).
    from_core : In(1)
        The core's ``tx`` line (idle high).
    """

    def __init__(self, uart, bus):
        self._params = uart
        self._bus = bus
        super().__init__(wiring.Signature({"to_core": Out(1, init=1), "from_core": In(1, init=1)}))

    def elaborate(self, platform):
        from luna.gateware.usb.devices.acm import USBSerialDevice

        from golden.protocol import DELIMITER
        from hw.uart import UARTRx, UARTTx

        m = Module()
        m.submodules.acm = acm = USBSerialDevice(
            bus=self._bus, idVendor=USB_VID, idProduct=USB_PID, manufacturer_string="bitmix",
            product_string="bitmix accelerator link")
        m.d.comb += acm.connect.eq(1)

        # host -> core
        m.submodules.down = down = AsyncFIFO(width=8, depth=FIFO_DEPTH, w_domain="usb",
                                             r_domain="sync")
        m.d.comb += [down.w_data.eq(acm.rx.payload), down.w_en.eq(acm.rx.valid),
                     acm.rx.ready.eq(down.w_rdy)]
        m.submodules.tx = tx = UARTTx(self._params)
        m.d.comb += [tx.data.payload.eq(down.r_data), tx.data.valid.eq(down.r_rdy),
                     down.r_en.eq(tx.data.ready), self.to_core.eq(tx.tx)]

        # core -> host
        m.submodules.rx = rx = UARTRx(self._params)
        m.submodules.up = up = AsyncFIFO(width=8, depth=FIFO_DEPTH, w_domain="sync",
                                         r_domain="usb")
        m.d.comb += [rx.rx.eq(self.from_core), up.w_data.eq(rx.data.payload),
                     up.w_en.eq(rx.data.valid), rx.data.ready.eq(up.w_rdy)]
        # The byte at the head of the FIFO waits until the next one is behind it (sent with
        # last=0), or it is a frame delimiter, or FLUSH_CYCLES pass (both sent with last=1: the
        # endpoint sends the packet now instead of waiting for 64 bytes).
        idle = Signal(range(FLUSH_CYCLES + 1))
        alone = up.r_level == 1
        with m.If(~alone):
            m.d.usb += idle.eq(0)
        with m.Elif(idle != FLUSH_CYCLES):
            m.d.usb += idle.eq(idle + 1)
        delim = up.r_data == DELIMITER
        m.d.comb += [acm.tx.payload.eq(up.r_data),
                     acm.tx.valid.eq(up.r_rdy & (~alone | delim | (idle == FLUSH_CYCLES))),
                     acm.tx.last.eq(delim | alone),
                     up.r_en.eq(acm.tx.valid & acm.tx.ready)]
        return m
