"""`fpga.usb_serial`: the OrangeCrab's USB CDC-ACM link, simulated at the USB packet level.

LUNA's own USB device test harness (``luna.gateware.test.usb2.USBDeviceTest``) plays the host on
the device's UTMI bus (the gateware PHY below it is LUNA's, tested upstream): set an address,
select the configuration, send bytes to the data OUT endpoint, read the data IN endpoint. The
DUT is the bridge with the echo core behind its UART lines, in a 48 MHz ``sync`` domain next to
the 12 MHz ``usb`` one, so a byte crosses both clock domains and both UARTs each way.
"""

import pytest
from amaranth.hdl import Elaboratable, Module
from luna.gateware.test import usb_domain_test_case
from luna.gateware.test.usb2 import USBDeviceTest
from luna.gateware.usb.usb2.packet import USBPacketID

from fpga.board_top import EchoCore
from fpga.usb_serial import FLUSH_CYCLES, USB_PID, USB_VID, UsbSerialBridge
from hw.uart import UARTParams

# LUNA 0.2 still imports Amaranth's pre-0.5 names and its harness uses add_sync_process
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DATA_EP = 4                    # LUNA's USBSerialDevice data endpoints (IN 0x84, OUT 0x04)


class BridgeWithEcho(Elaboratable):
    def __init__(self, bus):
        self.bus = bus

    def elaborate(self, platform):
        m = Module()
        uart = UARTParams.from_divisor(4)
        m.submodules.bridge = bridge = UsbSerialBridge(uart, self.bus)
        m.submodules.core = core = EchoCore(uart)
        m.d.comb += [core.rx.eq(bridge.to_core), bridge.from_core.eq(core.tx)]
        return m


class TestUsbSerialBridge(USBDeviceTest):
    FRAGMENT_UNDER_TEST = BridgeWithEcho
    USB_CLOCK_FREQUENCY = 12e6
    SYNC_CLOCK_FREQUENCY = 48e6

    def initialize_signals(self):
        yield self.utmi.line_state.eq(0b01)        # J: an idle full-speed bus
        yield self.utmi.vbus_valid.eq(1)
        yield from self.advance_cycles(10)

    def configure(self):
        pid = yield from self.set_address(5)
        self.assertEqual(pid, USBPacketID.DATA1)          # the status stage's zero-length packet
        pid = yield from self.set_configuration(1)
        self.assertEqual(pid, USBPacketID.DATA1)

    def read_in(self, max_polls):
        """Poll the data IN endpoint until a packet arrives; (bytes, polls) or (None, polls)."""
        for polls in range(1, max_polls + 1):
            pid, data = yield from self.in_transaction(endpoint=DATA_EP)
            if pid in (USBPacketID.DATA0, USBPacketID.DATA1):
                return bytes(data), polls
            self.assertEqual(pid, USBPacketID.NAK)
            yield from self.advance_cycles(20)
        return None, max_polls

    @usb_domain_test_case
    def test_descriptors_say_cdc_acm_with_our_ids(self):
        handshake, device = yield from self.get_descriptor(1, length=18)
        self.assertEqual(handshake, USBPacketID.ACK)
        self.assertEqual(device[8] | device[9] << 8, USB_VID)
        self.assertEqual(device[10] | device[11] << 8, USB_PID)
        _, config = yield from self.get_descriptor(2, length=64)
        # interface descriptors (length 9, type 4): CDC ACM control, then CDC data
        classes = [tuple(config[i + 5:i + 8]) for i in range(len(config) - 8)
                   if config[i] == 9 and config[i + 1] == 4]
        self.assertEqual(classes, [(0x02, 0x02, 0x01), (0x0A, 0x00, 0x00)])

    @usb_domain_test_case
    def test_frame_is_echoed_as_one_packet_ending_at_the_delimiter(self):
        yield from self.configure()
        frame = bytes([0x11, 0x22, 0x33, 0x00])
        handshake = yield from self.out_transaction(*frame, endpoint=DATA_EP)
        self.assertEqual(handshake, USBPacketID.ACK)
        data, _ = yield from self.read_in(200)
        # the delimiter ended the packet: all four bytes in one short packet, nothing after
        self.assertEqual(data, frame)
        pid, _ = yield from self.in_transaction(endpoint=DATA_EP)
        self.assertEqual(pid, USBPacketID.NAK)

    @usb_domain_test_case
    def test_bytes_without_delimiter_are_flushed_after_the_idle_time(self):
        yield from self.configure()
        handshake = yield from self.out_transaction(0x41, 0x42, endpoint=DATA_EP)
        self.assertEqual(handshake, USBPacketID.ACK)
        data, polls = yield from self.read_in(200)
        self.assertEqual(data, b"AB")
        # two bytes through the UARTs take ~25 usb cycles; the flush waits FLUSH_CYCLES more
        self.assertGreater(polls * 20, FLUSH_CYCLES // 2)
