"""A stand-in FPGA top for the virtual-board tests (tests only): the contract's ports, and a
responder that ACKs every valid frame with its own payload echoed back.

``link="uart"``: ports ``rx``, ``tx``, ``leds`` (hw.link.Link); ``link="bytes"``: ports
``rx_byte`` / ``tx_byte`` byte streams into the frame decoder / out of the encoder, ``leds``.
The answer to request ``(seq, cmd, payload)`` is ``encode_response(seq, cmd, OK, payload[:511])``;
frames with a bad verdict are dropped and counted on ``leds`` (bad frames, mod 16). It lets the
harness, the transport and the fuzzer run before the real command unit exists.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.protocol import CRC_BYTES, HEADER_BYTES, MAX_FRAME, MAX_PAYLOAD, RESPONSE_FLAG, ErrorCode
from hw.framing import FrameDecoder, FrameEncoder
from hw.link import Link, LinkParams


class EchoTop(wiring.Component):
    def __init__(self, link: str, clk_hz: int = 12_000_000, baud: int = 3_000_000):
        self._link = link
        self._lp = LinkParams.make(clk_hz=clk_hz, baud=baud)
        sig = {"leds": Out(4)}
        if link == "uart":
            sig.update(rx=In(1, init=1), tx=Out(1, init=1))
        else:
            sig.update(rx_byte=In(stream.Signature(8)), tx_byte=Out(stream.Signature(8)))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        if self._link == "uart":
            m.submodules.link = link = Link(self._lp)
            m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
            frame, verdict, reply = link.frame, link.verdict, link.reply
        else:
            m.submodules.dec = dec = FrameDecoder()
            m.submodules.enc = enc = FrameEncoder()
            wiring.connect(m, wiring.flipped(self.rx_byte), dec.wire)
            wiring.connect(m, enc.wire, wiring.flipped(self.tx_byte))
            frame, verdict, reply = dec.frame, dec.verdict, enc.frame

        m.submodules.buf = buf = Memory(shape=8, depth=MAX_FRAME, init=[])
        wr = buf.write_port()
        rd = buf.read_port(domain="comb")
        wp = Signal(range(MAX_FRAME + 1))
        bad = Signal(4)
        m.d.comb += self.leds.eq(bad)
        n, i = Signal(range(MAX_PAYLOAD + 1)), Signal(range(MAX_FRAME + 1))

        m.d.comb += [wr.addr.eq(wp), wr.data.eq(frame.payload.data)]
        with m.FSM():
            with m.State("RECV"):
                m.d.comb += [frame.ready.eq(1), verdict.ready.eq(1)]
                with m.If(frame.valid):
                    with m.If(frame.payload.first):
                        m.d.comb += wr.addr.eq(0)
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += wp.eq(1)
                    with m.Elif(wp < MAX_FRAME):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += wp.eq(wp + 1)
                with m.If(verdict.valid):
                    with m.If(verdict.payload == ErrorCode.OK):
                        length = wp - HEADER_BYTES - CRC_BYTES
                        m.d.sync += [n.eq(length), i.eq(0)]
                        with m.If(length > MAX_PAYLOAD - 1):
                            m.d.sync += n.eq(MAX_PAYLOAD - 1)
                        m.next = "SEND"
                    with m.Else():
                        m.d.sync += bad.eq(bad + 1)
            with m.State("SEND"):
                # i: 0 seq, 1 cmd, 2-3 length, 4 error code, 5.. payload bytes 4..
                m.d.comb += [rd.addr.eq(i - 1), reply.valid.eq(1)]
                m.d.comb += reply.payload.last.eq(i == n + 4)
                with m.Switch(i):
                    with m.Case(0):
                        m.d.comb += [rd.addr.eq(0), reply.payload.data.eq(rd.data)]
                    with m.Case(1):
                        m.d.comb += [rd.addr.eq(1), reply.payload.data.eq(rd.data | RESPONSE_FLAG)]
                    with m.Case(2):
                        m.d.comb += reply.payload.data.eq((n + 1)[:8])
                    with m.Case(3):
                        m.d.comb += reply.payload.data.eq((n + 1)[8:16])
                    with m.Case(4):
                        m.d.comb += reply.payload.data.eq(ErrorCode.OK)
                    with m.Default():
                        m.d.comb += reply.payload.data.eq(rd.data)
                with m.If(reply.ready):
                    m.d.sync += i.eq(i + 1)
                    with m.If(reply.payload.last):
                        m.next = "RECV"
        return m
