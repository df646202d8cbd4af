"""The command unit: executes ``golden.protocol`` requests on the memories and the GEMV engine
and answers each with one response frame (issue 9; docs/architecture.md §5).

```
 frame decoder ─ frame bytes ─► frame buffer (2 banks of MAX_FRAME bytes) + header/field registers
               ─ verdict ─────► OK: execute │ else: count (STATUS frames_bad, last_frame_error)
                                            ▼
   CHECK (codes below, registered) ─► EXEC ─► DIV (offset / beat bytes, or N / R: 32-cycle
   divider) ─► WRITE / LOAD (the region-size products registered, then checked)
                                            ▼
   REPLY: header | error byte | data (capabilities ROM, status snapshot, or region bytes) ─► encoder
 background: weight/activation feeders (regions → engine streams; the weights through a skid
 buffer), result collector (→ results)
```

Pipeline registers for the boards' clocks (issue 10): the checks' offset arithmetic, the RESET /
ABORT pulses, the region-size products of LOAD, the reply's length and last index and a region's
read beat (a wide one into the reply's shift register: no byte multiplexer over it) are registered,
and the weight feeder's read enable does not depend on the engine's ``weights.ready`` within one
cycle (a skid buffer between them). A request costs one cycle more than without them
(CHECK / EXEC), LOAD_LAYER three, a run's first weight one, a READ_MEM from byte b of a beat b,
a WRITE_MEM one with the engine's ``registered_control`` (the frame buffer's byte registered).

Every code, width and layout is read from :mod:`golden.protocol` (``FRAME_HEADER``, ``PAYLOADS``,
``RESPONSES``, ``Command``, ``ErrorCode``, ``Region``, ``EngineState``), the engine's from
:mod:`golden.gemv_layout`, the sizes from :class:`fpga.top_params.TopParams`.

Checks, in this order (the first that fails is the answer): an unknown command code →
``UNKNOWN_COMMAND``; a payload length other than the command's (``PAYLOADS`` size; LOAD_LAYER its
fields plus ``desc_bytes``; WRITE_MEM at least its fields) → ``BAD_LENGTH``; a retry (same
sequence number and command as the previous decoded request) of a command with side effects → the
first execution's code, nothing executed; a field out of range (region, ``count`` over
``MAX_PAYLOAD - 1``, precision over the largest term count, descriptor K/N/format set/path or its
padding bits) → ``BAD_FIELD``; an access past a region's end, or a layer whose weights (from its
``weight_base``), activations or results do not fit their regions → ``OUT_OF_BOUNDS``; a GEMV
running and the command needs an idle engine (WRITE_MEM, LOAD_LAYER, SET_PRECISION, RUN; READ_MEM
of the weights or results, which the run is using) → ``BUSY``; RUN with no layer loaded,
READ_RESULTS when the last run did not finish → ``NOT_READY``; the engine refusing the descriptor
at RUN → ``ENGINE_ERROR``.

Never hangs: every state leads back to idle within a bounded number of cycles (the longest is a
READ_MEM reply, paced by the link). Reception runs beside execution: while one request executes
and is answered, the next one is received into the frame buffer's other bank, so a host that
pipelines requests (sw_driver's WRITE_MEM window) loses nothing as long as a request executes
faster than the next one arrives (a 512-byte WRITE_MEM executes in ~560 cycles and arrives in
≥ 5,200 at the fastest UART divisor). A third frame arriving while one waits and one executes is
held back in the decoder (byte streams) or dropped by the UART as an overrun (a damaged frame the
host resends). A RUN is acknowledged when the engine took the descriptor; the run proceeds in the
background (STATUS says when it is done) while the unit answers further requests.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from golden.protocol import (
    FRAME_HEADER,
    HEADER_BYTES,
    MAX_FRAME,
    MAX_PAYLOAD,
    PAYLOADS,
    RESPONSE_FLAG,
    RESPONSES,
    Command,
    EngineState,
    ErrorCode,
    Region,
)
from hw.interfaces import command_unit_signature, frame_in_layout, struct_layout
from hw.skid import SkidBuffer

__all__ = ["CommandUnit", "PURE_COMMANDS", "payload_bytes"]

#: Commands without side effects (golden.protocol, "Requests and responses"): a retry of one is
#: executed again; a retry of any other command only repeats the first answer's code.
PURE_COMMANDS = frozenset({Command.CAPABILITIES, Command.STATUS, Command.READ_MEM,
                           Command.READ_RESULTS})
_DIV_BITS = 32
#: Region beats up to this many bytes are read for the host through a byte multiplexer, wider
#: ones through the reply's shift register (see CommandUnit.elaborate).
_NARROW_BEAT = 8
#: Unit states, from 1 (Yosys writes `x == 0` as `!x`, a Verilator lint warning). CHECK
#: registers the request's checks, EXEC acts on them (two cycles: the checks' 32-bit offset
#: arithmetic is not in front of the memories' and the engine's controls).
_RECV, _CHECK, _EXEC, _DIV, _WRITE, _LOAD, _RUN_START, _RUN_CHECK, _REPLY = range(1, 10)


def _is(sig, value: int):
    """``sig == value`` without the ``!x`` Yosys writes for ``== 0`` (a Verilator lint warning)."""
    return ~sig.any() if value == 0 else sig == value


def _select(m, out, index, values, default=None) -> None:
    """``out = values[index]`` (else ``default``) as an If chain (Verilator flags the wide
    shifts and incomplete cases that Yosys writes for an ``Array`` index or a ``Switch``)."""
    for i, v in enumerate(values):
        with (m.If if i == 0 else m.Elif)(_is(index, i)):
            m.d.comb += out.eq(v)
    if default is not None:
        with m.Else():
            m.d.comb += out.eq(default)


def payload_bytes(cmd: Command, desc_bytes: int) -> int:
    """Fixed payload bytes of request ``cmd`` (WRITE_MEM's data bytes follow them; LOAD_LAYER's
    engine descriptor is part of its fixed payload)."""
    fields = PAYLOADS[cmd].size // 8 if cmd in PAYLOADS else 0
    return fields + (desc_bytes if cmd == Command.LOAD_LAYER else 0)


class CommandUnit(wiring.Component):
    """Executes host requests; ports in :func:`hw.interfaces.command_unit_signature`.

    Parameters
    ----------
    params : fpga.top_params.TopParams
        Validated top parameters (region sizes, engine parameters, clock for CAPABILITIES).

    Members
    -------
    frame, verdict : In(stream)
        Request bytes and each frame's verdict from the frame decoder.
    reply : Out(stream)
        Response bytes (header, payload) to the frame encoder.
    engine : In(gemv_engine_signature)
        The GEMV engine, driven through its ports.
    engine_reset : Out(1)
        Reset pulse for the engine (RESET).
    weights_mem, activations_mem, results_mem : In(beat_memory_signature)
        The regions' memory ports.
    state : Out(2)
        ``EngineState`` of the last run.
    activity : Out(1)
        Toggles on every decoded request.
    """

    def __init__(self, params):
        self._params = params
        super().__init__(command_unit_signature(params))

    def elaborate(self, platform):  # noqa: C901 - one state machine, kept in one place
        tp = self._params
        g = tp.gemv
        m = Module()

        desc_bytes = tp.desc_bytes
        fixed = {c: payload_bytes(c, desc_bytes) for c in Command}
        nfields = max(fixed.values())
        cmd_layout = g.layout.cmd
        caps = tp.capabilities_bytes()
        status_layout = RESPONSES[Command.STATUS]
        status_bytes = status_layout.size // 8
        mems = {r: getattr(self, f"{r.name.lower()}_mem") for r in Region}
        nbytes = {r: tp.region_beat_bytes[r] for r in Region}
        size = {r: tp.region_bytes[r] for r in Region}
        max_depth = max(tp.region_beats.values())
        eng = self.engine

        state = Signal(range(_REPLY + 1), init=_RECV)
        # the reply leaves through a skid buffer: no combinational path from the region's read
        # data and the byte multiplexers into the frame encoder's CRC, nor from its ready back
        m.submodules.reply_skid = skid = SkidBuffer(frame_in_layout())
        wiring.connect(m, skid.o, wiring.flipped(self.reply))
        rep = skid.i

        # ---------------------------------------------------------------- frame reception
        m.submodules.buf = buf = Memory(shape=8, depth=2 * MAX_FRAME, init=[])   # two banks
        bw = buf.write_port()
        br = buf.read_port()
        idx = Signal(range(MAX_FRAME + 1))
        hdr = Signal(struct_layout(FRAME_HEADER))
        fields = Signal(8 * nfields)
        hdr_bits = hdr.as_value()

        def view(cmd):
            lay = PAYLOADS[cmd]
            return data.View(struct_layout(lay), fields[:lay.size])

        wm, rm, sp, rr, ll = (view(c) for c in (Command.WRITE_MEM, Command.READ_MEM,
                                                Command.SET_PRECISION, Command.READ_RESULTS,
                                                Command.LOAD_LAYER))
        ll_bits = PAYLOADS[Command.LOAD_LAYER].size             # the descriptor follows the fields
        desc = data.View(struct_layout(cmd_layout), fields[ll_bits:ll_bits + cmd_layout.size])

        frames_ok = Signal(16)
        frames_bad = Signal(16)
        last_frame_error = Signal(8)
        activity = Signal()
        m.d.comb += self.activity.eq(activity)

        # ---------------------------------------------------------------- engine-side state
        est = Signal(2, init=EngineState.IDLE)
        prec = Signal(g.term_bits)
        cycles = Signal(32)
        layer_valid = Signal()
        layer_desc = Signal(cmd_layout.size)
        layer_acts = Signal(range(tp.act_beats + 1))
        layer_weights = Signal(range(tp.weight_beats + 1))    # beats per plane read (path 1)
        layer_wbase = Signal(range(max(2, tp.weight_beats)))   # first weight beat of the layer
        layer_path1 = Signal()
        layer_planes = Signal(8)
        flush = Signal()                               # stop the feeders (abort, reset, error)
        running = Signal()
        m.d.comb += [running.eq(est == EngineState.RUNNING), self.state.eq(est),
                     eng.precision.eq(prec), eng.cmd.payload.eq(layer_desc)]

        # feeders: activation and weight regions -> engine streams (the region's read register
        # is the stream's payload register: it holds while the engine stalls)
        # The weights go through a skid buffer. With the engine's weight queue
        # (registered_control, the ECP5 builds) it computes a beat's term count (table lookups,
        # a maximum over R rows) as it takes the beat, from the skid's output register instead
        # of the block RAM's slow output (5.8 ns on ECP5); without it (the iCE40's SPRAM build) the engine's
        # weights.ready depends on the beat, and the skid keeps the weight region's read data
        # from reaching its own read enable in one cycle. The skid is emptied one cycle after a
        # flush (from a register: the reset reaches every payload bit), when the feeder has
        # stopped and the engine takes no weights. acts.ready is a register of the engine's.
        reg = tp.gemv.registered_control       # the ECP5 builds: see hw.gemv_params
        flush_q = Signal()
        m.d.sync += flush_q.eq(flush)
        m.submodules.weights_skid = wskid = ResetInserter(flush_q)(
            SkidBuffer(eng.weights.payload.shape()))
        wiring.connect(m, wskid.o, wiring.flipped(eng.weights))
        feeds = {}
        for r, stream_ in ((Region.ACTIVATIONS, eng.acts), (Region.WEIGHTS, wskid.i)):
            name = r.name.lower()
            left = Signal(range(tp.region_beats[r] + 1), name=f"{name}_left")
            addr = Signal(range(max(2, tp.region_beats[r])), name=f"{name}_addr")
            ov = Signal(name=f"{name}_ov")
            fetch = Signal(name=f"{name}_fetch")
            feeds[r] = (left, addr, ov, fetch)
            m.d.comb += [stream_.valid.eq(ov), fetch.eq((~ov | stream_.ready) & left.any()),
                         stream_.payload.eq(mems[r].rdata[:stream_.payload.shape().size])]
            with m.If(fetch):
                m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), ov.eq(1)]
            with m.Elif(stream_.ready):
                m.d.sync += ov.eq(0)
            with m.If(flush):
                m.d.sync += [left.eq(0), ov.eq(0)]
        acts_busy = Signal()
        m.d.comb += acts_busy.eq(feeds[Region.ACTIVATIONS][0].any() | feeds[Region.ACTIVATIONS][2])

        # result collector: every result beat of the run goes to the results region
        res_addr = Signal(range(max(2, tp.result_beats)))
        res_write = Signal()
        m.d.comb += [eng.results.ready.eq(1),
                     res_write.eq(eng.results.valid & running & ~flush)]
        with m.If(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(eng.status.err_format):
                m.d.comb += flush.eq(1)
                m.d.sync += est.eq(EngineState.ERROR)
        with m.If(res_write):
            m.d.sync += res_addr.eq(res_addr + 1)
            with m.If(eng.results.payload.last):
                m.d.sync += est.eq(EngineState.DONE)

        # ---------------------------------------------------------------- host access to regions
        h_region = Signal(2)
        h_word = Signal(range(max(2, max_depth)))
        h_lane = Signal(range(max(2, max(nbytes.values()))))
        h_re = Signal()
        h_we = Signal()
        h_wbyte = Signal(8)
        # A region's beat read for the host is registered before the reply (a block RAM's
        # unregistered output is slow: 5.8 ns clock-to-out on ECP5). Beats of at most
        # _NARROW_BEAT bytes go into h_rword and a byte multiplexer picks byte h_lane (the
        # cheapest on a full iCE40); a wider beat goes into the reply's shift register (shreg),
        # is shifted to byte h_lane one byte per cycle and sent from its low byte: no multiplexer
        # over tens of bytes (R8 x L8 on ECP5: 40 bytes, 50.8 MHz through the multiplexer).
        wide = max(nbytes.values()) > _NARROW_BEAT
        h_rword_load = Signal()                      # the read data is on rdata this cycle
        h_rword = Signal(8 * max(nbytes.values()))
        h_rbyte = Signal(8)
        shreg = Signal(8 * max(len(caps), status_bytes, *(nbytes.values() if wide else ())))
        lane_last = Signal()                         # h_lane is the beat's last byte
        for r in Region:
            port = mems[r]
            sel = Signal(name=f"h_sel_{r.name.lower()}")
            m.d.comb += [sel.eq(_is(h_region, r)), port.addr.eq(h_word), port.re.eq(h_re & sel),
                         port.we.eq(Cat(*(h_we & sel & _is(h_lane, b) for b in range(nbytes[r])))),
                         port.wdata.eq(h_wbyte.replicate(nbytes[r]))]
            with m.If(sel):                          # one region at a time
                m.d.comb += lane_last.eq(h_lane == nbytes[r] - 1)
                if wide:
                    with m.If(h_rword_load):             # the bits above the beat keep theirs
                        m.d.sync += shreg[:len(port.rdata)].eq(port.rdata)
                else:
                    _select(m, h_rbyte, h_lane, [h_rword[8 * b:8 * b + 8] for b in range(nbytes[r])])
                    with m.If(h_rword_load):
                        m.d.sync += h_rword.eq(port.rdata)
        for r, (_, addr, _, fetch) in feeds.items():   # a feeder owns its region while reading
            with m.If(fetch):
                m.d.comb += [mems[r].addr.eq(addr), mems[r].re.eq(1), mems[r].we.eq(0)]
        rport = mems[Region.RESULTS]
        res_we, res_wa, res_wd = res_write, res_addr, eng.results.payload.as_value()
        if reg:
            # the result beat is written one cycle later from registers: the write enable (a
            # function of the flush logic) then selects the region port's ~R x 32 data bits from
            # a register, not through the request decoding (R16 x L16: 57 MHz through it)
            res_we, res_wa = Signal(name="res_we"), Signal.like(res_addr, name="res_wa")
            res_wd = Signal(len(res_wd), name="res_wd", reset_less=True)
            m.d.sync += [res_we.eq(res_write), res_wa.eq(res_addr),
                         res_wd.eq(eng.results.payload.as_value())]
        with m.If(res_we):
            m.d.comb += [rport.addr.eq(res_wa), rport.re.eq(0),
                         rport.we.eq((1 << nbytes[Region.RESULTS]) - 1),
                         rport.wdata.eq(res_wd)]

        # ---------------------------------------------------------------- request checks
        cmd = hdr.cmd
        length = hdr.length
        err = Signal(8)             # the answer's code when nothing executes it further
        known = Signal()
        len_ok = Signal()
        m.d.comb += known.eq(Cat(*(cmd == c for c in Command)).any())
        for i, c in enumerate(Command):
            with (m.If if i == 0 else m.Elif)(cmd == c):
                if c == Command.WRITE_MEM:
                    m.d.comb += len_ok.eq(length >= fixed[c])
                else:
                    m.d.comb += len_ok.eq(_is(length, fixed[c]))

        prev_valid, prev_seq, prev_cmd, prev_err = Signal(), Signal(8), Signal(8), Signal(8)
        retry = Signal()
        c_known, c_len_ok, c_retry, c_err = Signal(), Signal(), Signal(), Signal(8)   # registered
        # EXEC of a RESET / ABORT, decoded in CHECK: the engine reset, abort and feeder flush
        # pulses fan out widely, so they come from two registers, not from the command decode
        c_reset, c_abort = Signal(), Signal()
        with m.If(state == _EXEC):
            with m.If(c_reset):
                m.d.comb += [self.engine_reset.eq(1), flush.eq(1)]
            with m.If(c_abort & running):
                m.d.comb += [eng.abort_req.eq(1), flush.eq(1)]
        m.d.comb += retry.eq(prev_valid & (hdr.seq == prev_seq) & (cmd == prev_cmd)
                             & ~Cat(*(cmd == c for c in PURE_COMMANDS)).any())

        def region_value(region, values, name):
            out = Signal(range(max(values) + 1), name=name)
            _select(m, out, region, values)
            return out

        n_data = Signal(16)
        m.d.comb += n_data.eq(length - fixed[Command.WRITE_MEM])
        bad_desc = Signal()
        k, n = desc.k, desc.n
        log2g = g.log2_group
        pad_bits = fields[ll_bits + cmd_layout.size:ll_bits + 8 * desc_bytes]
        if g.lut is not None:                        # path 1: planes 1..q, the format set unused
            bad_path = Mux(desc.path, ~desc.planes.any() | (desc.planes > g.lut.max_planes),
                           desc.fmt_set >= len(g.format_sets))
        else:
            bad_path = (desc.fmt_set >= len(g.format_sets)) | desc.path.any()
        m.d.comb += bad_desc.eq(
            ~k.any() | (k[:log2g].any() if log2g else 0) | (k > g.max_k) | ~n.any() | (n > g.max_n)
            | bad_path | (pad_bits.any() if len(pad_bits) else 0))
        wm_size = region_value(wm.region, [size[r] for r in Region], "wm_size")
        rm_size = region_value(rm.region, [size[r] for r in Region], "rm_size")
        with m.If(cmd == Command.WRITE_MEM):
            with m.If(wm.region >= Region.RESULTS):
                m.d.comb += err.eq(ErrorCode.BAD_FIELD)
            with m.Elif(wm.offset + n_data > wm_size):
                m.d.comb += err.eq(ErrorCode.OUT_OF_BOUNDS)
            with m.Elif(running):
                m.d.comb += err.eq(ErrorCode.BUSY)
        with m.Elif(cmd == Command.READ_MEM):
            with m.If((rm.region > Region.RESULTS) | (rm.count > MAX_PAYLOAD - 1)):
                m.d.comb += err.eq(ErrorCode.BAD_FIELD)
            with m.Elif(rm.offset + rm.count > rm_size):
                m.d.comb += err.eq(ErrorCode.OUT_OF_BOUNDS)
            with m.Elif(((rm.region != Region.ACTIVATIONS) & running)
                        | ((rm.region == Region.ACTIVATIONS) & acts_busy)):
                m.d.comb += err.eq(ErrorCode.BUSY)
        with m.Elif(cmd == Command.READ_RESULTS):
            with m.If(rr.count > MAX_PAYLOAD - 1):
                m.d.comb += err.eq(ErrorCode.BAD_FIELD)
            with m.Elif(rr.offset + rr.count > size[Region.RESULTS]):
                m.d.comb += err.eq(ErrorCode.OUT_OF_BOUNDS)
            with m.Elif(est != EngineState.DONE):
                m.d.comb += err.eq(ErrorCode.NOT_READY)
        with m.Elif(cmd == Command.SET_PRECISION):
            with m.If(sp.precision > tp.max_precision):
                m.d.comb += err.eq(ErrorCode.BAD_FIELD)
            with m.Elif(running):
                m.d.comb += err.eq(ErrorCode.BUSY)
        with m.Elif(cmd == Command.LOAD_LAYER):
            with m.If(bad_desc):
                m.d.comb += err.eq(ErrorCode.BAD_FIELD)
        with m.Elif(cmd == Command.RUN):
            with m.If(running):
                m.d.comb += err.eq(ErrorCode.BUSY)
            with m.Elif(~layer_valid):
                m.d.comb += err.eq(ErrorCode.NOT_READY)

        # ---------------------------------------------------------------- divider (32 cycles)
        dv_q = Signal(_DIV_BITS)
        dv_d = Signal(16)
        dv_r = Signal(17)
        dv_n = Signal(range(_DIV_BITS + 1))
        r2 = Signal(18)
        m.d.comb += r2.eq(Cat(dv_q[-1], dv_r))

        # ---------------------------------------------------------------- reply registers
        r_err = Signal(8)
        r_dlen = Signal(16)
        r_mem = Signal()                             # the data bytes come from a region
        ri = Signal(range(MAX_FRAME + 1))
        snap = Signal(struct_layout(status_layout))
        have_word, pending = Signal(), Signal()
        aligning, align = Signal(), Signal.like(h_lane)  # shifting a read beat to byte h_lane
        w_left = Signal(16)                          # WRITE_MEM bytes still to read from the buffer
        w_pipe = Signal()                            # a buffer byte arrives this cycle
        w_pipe2, w_byte = Signal(), Signal(8)        # ... and is in w_byte this cycle
        rd_ptr = Signal(range(2 * MAX_FRAME + 1))
        m.d.comb += br.addr.eq(rd_ptr)
        m.d.comb += [snap.state.eq(est), snap.precision.eq(prec),
                     snap.flags.eq(eng.status.as_value()), snap.cycles.eq(cycles),
                     snap.frames_ok.eq(frames_ok), snap.frames_bad.eq(frames_bad),
                     snap.last_frame_error.eq(last_frame_error)]

        # the reply's payload length and the index of its last byte, registered with the reply
        # (no adder in front of the byte multiplexer and the handshake)
        plen = Signal(16)
        last_ri = Signal(range(MAX_FRAME + 1))

        # With registered_control (the ECP5 clocks) the reply's byte stream does not hang off
        # the state machine's If chain: ``in_reply`` and ``is_data`` are registers, and the
        # reply's handshake, byte and shift register are driven outside the chain (the chain's
        # last branch is the negation of all the others: R16 x L16 reached 62 MHz through it
        # into the ~1,200-bit shift register's enable)
        if reg:
            in_reply, is_data_q = Signal(), Signal()

        def reply(code, dlen=0, mem=False):
            m.d.sync += [r_err.eq(code), r_dlen.eq(dlen), r_mem.eq(mem), ri.eq(0),
                         plen.eq(dlen + 1), last_ri.eq(HEADER_BYTES + dlen),
                         have_word.eq(0), pending.eq(0), state.eq(_REPLY)]
            if wide:
                m.d.sync += aligning.eq(0)
            if reg:
                m.d.sync += [in_reply.eq(1), is_data_q.eq(0)]

        def drive_reply(is_data, gate=None):
            """The reply stream's byte (header fields, then data), ``valid`` (a data byte waits
            for its region word) and ``last``; ``gate`` qualifies ``valid`` (registered_control:
            driven outside the state machine's chain, so ``in_reply``)."""
            byte = Signal(8)
            _select(m, byte, ri, [hdr.seq, hdr.cmd | RESPONSE_FLAG, plen[:8], plen[8:], r_err],
                    default=shreg[:8] if wide else Mux(r_mem, h_rbyte, shreg[:8]))
            valid = ~(r_mem & is_data) | have_word
            m.d.comb += [rep.valid.eq(valid if gate is None else gate & valid),
                         rep.payload.data.eq(byte),
                         rep.payload.last.eq(ri == last_ri)]

        def start_div(dividend, divisor):
            m.d.sync += [dv_q.eq(dividend), dv_d.eq(divisor), dv_r.eq(0), dv_n.eq(_DIV_BITS),
                         state.eq(_DIV)]

        nblocks = dv_q[:max(1, (-(-g.max_n // g.rows)).bit_length())]   # N <= max N was checked
        kbeats = Signal(range(g.max_k + 1))
        m.d.comb += kbeats.eq(desc.k >> (g.lanes.bit_length() - 1))
        # the weight stream of a layer: path 0 one beat per word; path 1 one per word and plane
        # read, p = precision capped by the stored planes q (golden.bcq_layout.EngineLutLayout),
        # so the region must hold the q-plane stream and RUN streams the p-plane one. LOAD
        # computes both products into registers, one per cycle (load_step 0, 1), and checks
        # them in the third (a multiplier's output is too slow to feed the checks directly)
        lut_path = g.lut is not None
        wbeats = Signal(len(nblocks) + kbeats.shape().width)      # path 1: per plane
        max_wbeats = Signal(len(wbeats) + 8)
        load_step = Signal(2)
        run_weights = Signal(len(layer_weights) + 8)
        if lut_path:
            # registered every cycle: RUN_START comes at least two cycles after a LOAD_LAYER or
            # SET_PRECISION changed its inputs, so the product is always current there
            p_read = Signal(8)
            m.d.comb += p_read.eq(Mux(prec.any() & (prec < layer_planes), prec, layer_planes))
            m.d.sync += run_weights.eq(Mux(layer_path1, layer_weights * p_read, layer_weights))
        else:
            m.d.comb += run_weights.eq(layer_weights)
        beat_bytes = {c: region_value(v.region, [nbytes[r] for r in Region], f"{c}_beat_bytes")
                      for c, v in (("wm", wm), ("rm", rm))}

        # reception runs beside execution into the other bank of the frame buffer, so a frame
        # that arrives while the previous one executes (a pipelining host) is not lost
        rx_bank, ex_bank = Signal(), Signal()
        rx_full = Signal()                           # a decoded OK frame waits for the executor
        rx_hdr = Signal(len(hdr_bits))
        rx_fields = Signal(len(fields))
        m.d.comb += [self.frame.ready.eq(~rx_full), self.verdict.ready.eq(~rx_full)]
        pos = Signal.like(idx)
        m.d.comb += pos.eq(Mux(self.frame.payload.first, 0, idx))
        with m.If(self.frame.valid & self.frame.ready):
            m.d.comb += [bw.addr.eq(Mux(rx_bank, MAX_FRAME + pos, pos)),
                         bw.data.eq(self.frame.payload.data), bw.en.eq(pos < MAX_FRAME)]
            m.d.sync += idx.eq(pos + 1)
            for i in range(HEADER_BYTES):
                with m.If(_is(pos, i)):
                    m.d.sync += rx_hdr[8 * i:8 * i + 8].eq(self.frame.payload.data)
            for i in range(nfields):
                with m.If(pos == HEADER_BYTES + i):
                    m.d.sync += rx_fields[8 * i:8 * i + 8].eq(self.frame.payload.data)
        with m.If(self.verdict.valid & self.verdict.ready):
            m.d.sync += idx.eq(0)
            with m.If(_is(self.verdict.payload, ErrorCode.OK)):
                m.d.sync += [frames_ok.eq(frames_ok + 1), activity.eq(~activity), rx_full.eq(1)]
            with m.Else():
                m.d.sync += [frames_bad.eq(frames_bad + 1),
                             last_frame_error.eq(self.verdict.payload)]

        with m.If(state == _RECV):
            with m.If(rx_full):                      # hand the frame to the executor
                m.d.sync += [hdr_bits.eq(rx_hdr), fields.eq(rx_fields), ex_bank.eq(rx_bank),
                             rx_bank.eq(~rx_bank), rx_full.eq(0), state.eq(_CHECK)]

        with m.Elif(state == _CHECK):
            executes = known & len_ok & ~retry & ~err.any()
            m.d.sync += [c_known.eq(known), c_len_ok.eq(len_ok), c_retry.eq(retry), c_err.eq(err),
                         c_reset.eq(executes & (cmd == Command.RESET)),
                         c_abort.eq(executes & (cmd == Command.ABORT)), state.eq(_EXEC)]

        with m.Elif(state == _EXEC):
            with m.If(~c_known):
                reply(ErrorCode.UNKNOWN_COMMAND)
            with m.Elif(~c_len_ok):
                reply(ErrorCode.BAD_LENGTH)
            with m.Elif(c_retry):
                reply(prev_err)
            with m.Elif(c_err.any()):
                reply(c_err)
            with m.Elif(cmd == Command.CAPABILITIES):
                m.d.sync += shreg.eq(int.from_bytes(caps, "little"))
                reply(ErrorCode.OK, len(caps))
            with m.Elif(cmd == Command.STATUS):
                m.d.sync += shreg.eq(snap.as_value())
                reply(ErrorCode.OK, status_bytes)
            with m.Elif(cmd == Command.WRITE_MEM):
                m.d.sync += [h_region.eq(wm.region), w_left.eq(n_data),
                             rd_ptr.eq(Mux(ex_bank, MAX_FRAME, 0) + HEADER_BYTES
                                       + fixed[Command.WRITE_MEM])]
                start_div(wm.offset, beat_bytes["wm"])
            with m.Elif(cmd == Command.READ_MEM):
                m.d.sync += [h_region.eq(rm.region), r_dlen.eq(rm.count)]
                start_div(rm.offset, beat_bytes["rm"])
            with m.Elif(cmd == Command.READ_RESULTS):
                m.d.sync += [h_region.eq(Region.RESULTS), r_dlen.eq(rr.count)]
                start_div(rr.offset, nbytes[Region.RESULTS])
            with m.Elif(cmd == Command.LOAD_LAYER):
                start_div(desc.n + (g.rows - 1), g.rows)
            with m.Elif(cmd == Command.SET_PRECISION):
                m.d.sync += prec.eq(sp.precision)
                reply(ErrorCode.OK)
            with m.Elif(cmd == Command.RUN):
                m.d.sync += state.eq(_RUN_START)
            with m.Elif(cmd == Command.RESET):
                m.d.sync += est.eq(EngineState.IDLE)        # the pulses: c_reset below
                reply(ErrorCode.OK)
            with m.Else():                                       # ABORT
                with m.If(running):
                    m.d.sync += est.eq(EngineState.IDLE)    # the pulses: c_abort below
                reply(ErrorCode.OK)

        with m.Elif(state == _DIV):
            with m.If(dv_n.any()):
                m.d.sync += dv_n.eq(dv_n - 1)
                with m.If(r2 >= dv_d):
                    m.d.sync += [dv_r.eq(r2 - dv_d), dv_q.eq(Cat(1, dv_q[:-1]))]
                with m.Else():
                    m.d.sync += [dv_r.eq(r2), dv_q.eq(Cat(0, dv_q[:-1]))]
            with m.Else():
                m.d.sync += [h_word.eq(dv_q), h_lane.eq(dv_r)]
                with m.If(cmd == Command.WRITE_MEM):
                    m.d.sync += state.eq(_WRITE)
                with m.Elif(cmd == Command.LOAD_LAYER):
                    m.d.sync += [state.eq(_LOAD), load_step.eq(0)]
                with m.Else():
                    reply(ErrorCode.OK, r_dlen, mem=True)

        with m.Elif(state == _WRITE):
            # buffer byte j is read in one cycle, registered in the next (block RAM output: 5.8 ns
            # on ECP5; not without registered_control: the full iCE40) and written to the region
            # in the third
            with m.If(w_left.any()):
                m.d.sync += [rd_ptr.eq(rd_ptr + 1), w_left.eq(w_left - 1), w_pipe.eq(1)]
            with m.Else():
                m.d.sync += w_pipe.eq(0)
            m.d.sync += [w_pipe2.eq(w_pipe), w_byte.eq(br.data)] if reg else []
            with m.If(w_pipe2 if reg else w_pipe):
                m.d.comb += [h_we.eq(1), h_wbyte.eq(w_byte if reg else br.data)]
                with m.If(lane_last):
                    m.d.sync += [h_lane.eq(0), h_word.eq(h_word + 1)]
                with m.Else():
                    m.d.sync += h_lane.eq(h_lane + 1)
            with m.If((~w_left.any() & ~w_pipe & ~w_pipe2) if reg else (~w_left.any() & ~w_pipe)):
                reply(ErrorCode.OK)

        with m.Elif((state == _LOAD) & _is(load_step, 0)):
            m.d.sync += [wbeats.eq(nblocks * kbeats), load_step.eq(1)]

        with m.Elif((state == _LOAD) & (load_step == 1)):
            m.d.sync += [max_wbeats.eq(Mux(desc.path, wbeats * desc.planes, wbeats) if lut_path
                                       else wbeats), load_step.eq(2)]

        with m.Elif(state == _LOAD):
            with m.If((ll.weight_base + max_wbeats > tp.weight_beats) | (kbeats > tp.act_beats)
                      | (nblocks > tp.result_beats)):
                reply(ErrorCode.OUT_OF_BOUNDS)
            with m.Elif(running):
                reply(ErrorCode.BUSY)
            with m.Else():
                m.d.sync += [layer_valid.eq(1), layer_desc.eq(desc.as_value()),
                             layer_acts.eq(kbeats), layer_weights.eq(wbeats),
                             layer_wbase.eq(ll.weight_base)]
                if lut_path:
                    m.d.sync += [layer_path1.eq(desc.path), layer_planes.eq(desc.planes)]
                reply(ErrorCode.OK)

        with m.Elif(state == _RUN_START):
            # wait until the engine is idle and drained (bounded: no run was RUNNING)
            m.d.comb += eng.cmd.valid.eq(~eng.status.busy)
            with m.If(eng.cmd.valid & eng.cmd.ready):
                a_left, a_addr, _, _ = feeds[Region.ACTIVATIONS]
                f_left, f_addr, _, _ = feeds[Region.WEIGHTS]
                m.d.sync += [a_left.eq(layer_acts), a_addr.eq(0), f_left.eq(run_weights),
                             f_addr.eq(layer_wbase), res_addr.eq(0), cycles.eq(0),
                             est.eq(EngineState.RUNNING), state.eq(_RUN_CHECK)]

        with m.Elif(state == _RUN_CHECK):
            s = eng.status
            with m.If(s.err_k | s.err_n | s.err_desc):
                m.d.comb += flush.eq(1)
                m.d.sync += est.eq(EngineState.ERROR)
                reply(ErrorCode.ENGINE_ERROR)
            with m.Else():
                reply(ErrorCode.OK)

        with m.Else():                                           # _REPLY (and unreachable codes)
            is_data = Signal()
            if reg:
                m.d.comb += is_data.eq(is_data_q)
            else:
                m.d.comb += is_data.eq(ri > HEADER_BYTES)
                drive_reply(is_data)
            # region bytes: read a beat, send its bytes from h_lane on, read the next one
            with m.If(r_mem & ~have_word & ~pending & (~aligning if wide else 1) & r_dlen.any()):
                m.d.comb += h_re.eq(1)
                m.d.sync += pending.eq(1)
            with m.If(pending):                      # the beat into h_rword or shreg (above)
                if not reg:
                    m.d.comb += h_rword_load.eq(1)
                if wide:
                    m.d.sync += [pending.eq(0), align.eq(h_lane), aligning.eq(h_lane.any()),
                                 have_word.eq(~h_lane.any())]
                else:
                    m.d.sync += [pending.eq(0), have_word.eq(1)]
            if wide:
                with m.If(aligning):                 # the first beat of a read from mid-beat
                    m.d.sync += align.eq(align - 1)
                    if not reg:
                        m.d.sync += shreg.eq(shreg >> 8)
                    with m.If(align == 1):
                        m.d.sync += [aligning.eq(0), have_word.eq(1)]
            with m.If(rep.valid & rep.ready):
                m.d.sync += ri.eq(ri + 1)
                if reg:
                    m.d.sync += is_data_q.eq(ri >= HEADER_BYTES)
                with m.If(is_data):
                    if not reg:
                        m.d.sync += shreg.eq(shreg >> 8)
                    with m.If(r_mem):
                        with m.If(lane_last):
                            m.d.sync += [h_lane.eq(0), h_word.eq(h_word + 1), have_word.eq(0)]
                        with m.Else():
                            m.d.sync += h_lane.eq(h_lane + 1)
                with m.If(rep.payload.last):
                    m.d.sync += [prev_valid.eq(1), prev_seq.eq(hdr.seq), prev_cmd.eq(hdr.cmd),
                                 prev_err.eq(r_err), have_word.eq(0), state.eq(_RECV)]
                    if reg:
                        m.d.sync += in_reply.eq(0)
        if reg:                                                  # the reply, outside the chain
            drive_reply(is_data_q, gate=in_reply)
            # pending and aligning are only ever set in _REPLY
            m.d.comb += h_rword_load.eq(pending)
            with m.If((rep.valid & rep.ready & is_data_q) | (aligning if wide else 0)):
                m.d.sync += shreg.eq(shreg >> 8)
        return m
