"""The top's memory regions: one single-ported memory of whole beats per region (issue 9).

A region (``golden.protocol.Region``: weights, activations, results) stores beats of one engine
stream, each beat as ``nbytes`` little-endian bytes (``fpga.top_params.TopParams.region_beat_bytes``).
:class:`BeatMemory` has one port of beat width with a byte write mask: the host writes single
bytes (WRITE_MEM), the weight feeder reads whole beats, one per cycle, and the result collector
writes whole beats. One port per region is all the command unit needs (the host and the engine
never use a region at the same time: a request that would is answered BUSY), and it is what the
iCE40UP5K's single-ported SPRAM offers.

Kinds
-----
``bram``: an ``amaranth.lib.memory.Memory`` (Yosys maps it to ECP5 DP16KD / iCE40 EBR).
``external``: a ``bram`` region as an ``Instance`` of :data:`EXTERNAL_MODULE`, whose Verilog
(``verif/sim_board/beat_memory.v``, the same ports and read timing) the virtual board compiles
alongside. Why: Amaranth and Yosys write a memory's zero initialiser entry by entry, and that
grows faster than linearly (a 16K-beat x 150-byte region took 4 minutes to elaborate, the
model-sized weights region of ``bitmix demo --model smollm2`` would take hours); Verilator needs
no initialiser. Only the virtual board's model-sized weights regions are built this way.

``spram``: ``ceil(8 * nbytes / 16)`` SB_SPRAM256KA (16K x 16 bits, nibble write mask) side by
side. With ``primitive=True`` (an iCE40 build) they are ``Instance`` s of the primitive; otherwise
:class:`SPRAMModel`, a behavioural model with the primitive's ports and read timing, so Verilator
simulates the same top the board runs.

Read timing (all kinds): a read (``re``) of ``addr`` in cycle t puts the beat on ``rdata`` in
cycle t+1, and ``rdata`` then holds it until the next read, whatever else happens on the port.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from bitmix.errors import BitmixError
from hw.interfaces import beat_memory_signature, spram_signature

__all__ = ["BeatMemory", "SPRAMModel", "MEMORY_KINDS", "SPRAM_DEPTH", "SPRAM_WIDTH", "EXTERNAL_MODULE"]

MEMORY_KINDS = ("bram", "spram")
#: Verilog module of an ``external`` region (verif/sim_board/beat_memory.v).
EXTERNAL_MODULE = "bitmix_beat_memory"
#: SB_SPRAM256KA geometry (iCE40 UltraPlus family handbook, TN1314).
SPRAM_DEPTH, SPRAM_WIDTH = 16384, 16


class SPRAMModel(wiring.Component):
    """Behavioural model of the iCE40 UltraPlus SB_SPRAM256KA (16K x 16 bits); ports in
    :func:`hw.interfaces.spram_signature` with the primitive's names.

    A write (``CHIPSELECT & WREN``) stores the nibbles of ``DATAIN`` whose ``MASKWREN`` bit is
    set; a read (``CHIPSELECT & ~WREN``) updates ``DATAOUT`` at the next clock edge, which then
    holds until the next read. ``STANDBY``/``SLEEP`` are not modelled (the top ties them low and
    ``POWEROFF`` high, as the primitive needs for normal operation).
    """

    def __init__(self):
        super().__init__(spram_signature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=SPRAM_WIDTH, depth=SPRAM_DEPTH, init=[])
        wr = mem.write_port(granularity=4)
        rd = mem.read_port()
        m.d.comb += [wr.addr.eq(self.ADDRESS), rd.addr.eq(self.ADDRESS), wr.data.eq(self.DATAIN),
                     rd.en.eq(self.CHIPSELECT & ~self.WREN & self.POWEROFF),
                     self.DATAOUT.eq(rd.data)]
        with m.If(self.CHIPSELECT & self.WREN & self.POWEROFF):
            m.d.comb += wr.en.eq(self.MASKWREN)
        return m


class BeatMemory(wiring.Component):
    """One memory region of ``depth`` beats of ``nbytes`` bytes; ports in
    :func:`hw.interfaces.beat_memory_signature`.

    Parameters
    ----------
    depth : int
        Beats stored.
    nbytes : int
        Bytes per beat.
    kind : str
        ``"bram"`` or ``"spram"`` (see the module docstring).
    primitive : bool
        ``kind="spram"`` only: instantiate SB_SPRAM256KA (iCE40 builds) instead of the model.
    external : bool
        ``kind="bram"`` only: an ``Instance`` of :data:`EXTERNAL_MODULE` (the virtual board's
        model-sized weights region; see the module docstring).

    Members
    -------
    addr : In(range(depth))
        Beat address of a read or write.
    re : In(1)
        Read ``addr``; ``rdata`` has the beat in the next cycle and holds it until the next read.
    we : In(nbytes)
        Byte write mask: byte i of ``wdata`` is written to byte i of beat ``addr``.
    wdata : In(8 * nbytes)
        The beat (or the bytes) to write.
    rdata : Out(8 * nbytes)
        The beat of the last read.
    """

    def __init__(self, depth: int, nbytes: int, kind: str = "bram", primitive: bool = False,
                 external: bool = False):
        self._MustUse__silence = True     # no "never used" warning if validation fails
        if kind not in MEMORY_KINDS:
            raise BitmixError(f"memory kind must be one of {', '.join(MEMORY_KINDS)}, got {kind!r}")
        if kind == "spram" and depth > SPRAM_DEPTH:
            raise BitmixError(f"SPRAM region of {depth} beats exceeds the primitive's {SPRAM_DEPTH}")
        if primitive and kind != "spram":
            raise BitmixError("primitive=True needs kind='spram'")
        if external and kind != "bram":
            raise BitmixError("external=True needs kind='bram'")
        self._params = (depth, nbytes, kind, primitive, external)
        self._MustUse__silence = False
        super().__init__(beat_memory_signature(depth, nbytes))

    @property
    def columns(self) -> int:
        """SB_SPRAM256KA side by side (``kind="spram"``)."""
        return -(-8 * self._params[1] // SPRAM_WIDTH)

    def elaborate(self, platform):
        depth, nbytes, kind, primitive, external = self._params
        m = Module()
        if external:
            m.submodules.mem = Instance(
                EXTERNAL_MODULE, p_DEPTH=depth, p_NBYTES=nbytes, p_ABITS=len(self.addr),
                i_clk=ClockSignal(), i_addr=self.addr, i_re=self.re, i_we=self.we, i_wdata=self.wdata,
                o_rdata=self.rdata)
            return m
        if kind == "bram":
            m.submodules.mem = mem = Memory(shape=8 * nbytes, depth=depth, init=[])
            wr = mem.write_port(granularity=8)
            rd = mem.read_port()
            m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                         rd.addr.eq(self.addr), rd.en.eq(self.re), self.rdata.eq(rd.data)]
            return m

        # SPRAM columns: byte b is column b // 2, nibbles 2*(b % 2) and 2*(b % 2) + 1
        width = SPRAM_WIDTH * self.columns
        wdata = Signal(width)
        mask = Signal(width // 4)
        dout = Signal(width)
        addr = Signal(14)
        m.d.comb += [wdata.eq(self.wdata), mask.eq(Cat(*(Cat(b, b) for b in self.we))),
                     addr.eq(self.addr)]
        for c in range(self.columns):
            ports = dict(ADDRESS=addr, DATAIN=wdata[16 * c:16 * c + 16],
                         MASKWREN=mask[4 * c:4 * c + 4], WREN=self.we.any(),
                         CHIPSELECT=self.re | self.we.any(), STANDBY=0, SLEEP=0, POWEROFF=1)
            out = dout[16 * c:16 * c + 16]
            if primitive:
                m.submodules[f"spram{c}"] = Instance(
                    "SB_SPRAM256KA", **{f"i_{k}": v for k, v in ports.items()}, i_CLOCK=ClockSignal(),
                    o_DATAOUT=out)
            else:
                m.submodules[f"spram{c}"] = col = SPRAMModel()
                m.d.comb += [getattr(col, k).eq(v) for k, v in ports.items()]
                m.d.comb += out.eq(col.DATAOUT)
        # hold the last read's beat whatever the primitive's output does between reads
        was_read = Signal()
        held = Signal(8 * nbytes)
        m.d.sync += was_read.eq(self.re & ~self.we.any())
        m.d.comb += self.rdata.eq(Mux(was_read, dout[:8 * nbytes], held))
        m.d.sync += held.eq(self.rdata)
        return m
