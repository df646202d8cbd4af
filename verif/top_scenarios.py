"""Scenarios for the FPGA top through its link, shared by the cocotb testbench
(:mod:`verif.tb_top`, both link modes) and the Amaranth-simulator unit tests.

Each scenario is ``async def name(host, tp, rng)`` on a :class:`verif.top_harness.HostBase` and
the top's :class:`fpga.top_params.TopParams`; expected values come from ``golden`` only (the
protocol's layouts, ``TopParams.capabilities_bytes``, ``golden.gemv_layout`` packers and
``golden.intref`` through :func:`verif.gemv_stimulus.expected`). Each returns a dict of counts.
"""

from __future__ import annotations

import random

from cobs import cobs

from fpga.top_params import TopParams
from golden.gemv_layout import STATUS_FLAGS
from golden.protocol import (
    CRC_BYTES,
    DELIMITER,
    FRAME_HEADER,
    MAX_ENCODED,
    MAX_PAYLOAD,
    PAYLOADS,
    RESPONSE_FLAG,
    RESPONSES,
    Command,
    EngineState,
    ErrorCode,
    FrameDecoder,
    FrameError,
    Region,
    crc32c,
    encode_frame,
    pack_bytes,
    request_payload,
    unpack_bytes,
)
from verif.gemv_stimulus import expected, random_gemv

__all__ = ["SCENARIOS", "status", "write_region", "read_region", "run_gemv", "gemv_bytes",
           "load_payload"]

C, E = Command, ErrorCode
_FLAG = {name: i for i, (name, _doc) in enumerate(STATUS_FLAGS)}


async def status(host) -> dict:
    return unpack_bytes(RESPONSES[C.STATUS], await host.ok(C.STATUS))


async def status_seq(host, seq: int) -> dict:
    return unpack_bytes(RESPONSES[C.STATUS], await host.ok(C.STATUS, seq=seq))


async def write_region(host, region: Region, offset: int, data: bytes, chunk: int | None = None):
    chunk = chunk or MAX_PAYLOAD - PAYLOADS[C.WRITE_MEM].size // 8
    for i in range(0, len(data), chunk):
        await host.ok(C.WRITE_MEM, request_payload(C.WRITE_MEM, data[i:i + chunk], region=region,
                                                   offset=offset + i))


async def read_region(host, region: Region, offset: int, count: int, chunk: int = MAX_PAYLOAD - 1,
                      cmd: Command = C.READ_MEM) -> bytes:
    out = b""
    for i in range(0, count, chunk):
        n = min(chunk, count - i)
        fields = {"offset": offset + i, "count": n}
        if cmd == C.READ_MEM:
            fields["region"] = region
        data = await host.ok(cmd, request_payload(cmd, **fields))
        assert len(data) == n, f"{cmd.name}: {len(data)} bytes, asked {n}"
        out += data
    return out


def load_payload(tp: TopParams, word: int, base: int = 0) -> bytes:
    """LOAD_LAYER payload: the layer's weight base (beats), then the engine's ``cmd`` word."""
    return request_payload(C.LOAD_LAYER, word.to_bytes(tp.desc_bytes, "little"), weight_base=base)


def gemv_bytes(tp: TopParams, g, base: int = 0) -> tuple[bytes, bytes, bytes]:
    """(weights, activations, LOAD_LAYER payload) bytes of GEMV ``g`` in the regions' byte form,
    its weights meant for beat ``base`` of the weights region."""
    lay = tp.gemv.layout
    w = lay.to_bytes(lay.weight_beats(g.codes, g.fmt_ids, g.u, tp.gemv.format_sets[g.fmt_set]))
    ab = tp.region_beat_bytes[Region.ACTIVATIONS]
    a = b"".join(x.to_bytes(ab, "little") for x in lay.act_beats(g.x))
    return w, a, load_payload(tp, lay.cmd_word(k=g.k, n=g.n, fmt_set=g.fmt_set), base)


def results_of(tp: TopParams, data: bytes, n: int) -> list[int]:
    rb = tp.region_beat_bytes[Region.RESULTS]
    beats = [int.from_bytes(data[i:i + rb], "little") for i in range(0, len(data), rb)]
    return tp.gemv.layout.unpack_results(beats, tp.gemv.row_bits, n)


async def wait_done(host, budget_polls: int = 400) -> dict:
    for _ in range(budget_polls):
        st = await status(host)
        if st["state"] != EngineState.RUNNING:
            return st
    raise AssertionError("GEMV still running after every poll")


async def run_gemv(host, tp: TopParams, g, base: int = 0, write: bool = True) -> dict:
    """Load (weights at beat ``base``; with ``write`` False, already there), run and read back
    GEMV ``g``; compare with golden.intref bit for bit."""
    w, a, d = gemv_bytes(tp, g, base)
    if write:
        await write_region(host, Region.WEIGHTS, base * tp.region_beat_bytes[Region.WEIGHTS], w)
    await write_region(host, Region.ACTIVATIONS, 0, a)
    await host.ok(C.LOAD_LAYER, d)
    await host.ok(C.SET_PRECISION, request_payload(C.SET_PRECISION, precision=g.precision))
    await host.ok(C.RUN)
    st = await wait_done(host)
    assert st["state"] == EngineState.DONE, f"{g.note}: state {st}"
    assert st["precision"] == g.precision and st["cycles"] > 0, st
    nres = tp.gemv.layout.blocks(g.n) * tp.region_beat_bytes[Region.RESULTS]
    got = results_of(tp, await read_region(host, Region.RESULTS, 0, nres, cmd=C.READ_RESULTS), g.n)
    want = expected(tp.gemv, g)
    assert got == want, f"{g.note} N={g.n} K={g.k} set {g.fmt_set} prec {g.precision}: " \
                        f"first mismatch at row {next(i for i in range(g.n) if got[i] != want[i])}"
    return st


# ---------------------------------------------------------------------------------- scenarios

async def identity(host, tp: TopParams, rng: random.Random) -> dict:
    """CAPABILITIES is TopParams' report byte for byte; STATUS after power-up."""
    assert await host.ok(C.CAPABILITIES) == tp.capabilities_bytes()
    st = await status(host)
    assert st["state"] == EngineState.IDLE and st["flags"] == 0 and st["cycles"] == 0, st
    assert st["frames_bad"] == 0 and st["last_frame_error"] == E.OK, st
    ok0 = st["frames_ok"]
    st = await status(host)
    assert st["frames_ok"] == (ok0 + 1) & 0xFFFF, st
    return {"requests": 3}


async def memories(host, tp: TopParams, rng: random.Random) -> dict:
    """WRITE_MEM / READ_MEM at random and edge offsets (unaligned, the first and last bytes,
    empty), chunked, in the weights and activations regions: each span is written over a zeroed
    neighbourhood, which reads back as zeros around exactly the bytes written."""
    n = 0
    for region in (Region.WEIGHTS, Region.ACTIVATIONS):
        size = tp.region_bytes[region]
        spans = [(0, min(size, MAX_PAYLOAD + 20)), (size - 1, 1), (size - 3, 3), (size, 0)]
        spans += [(o, rng.randint(1, min(size - o, 300))) for o in
                  (rng.randrange(size) for _ in range(4))]
        for off, cnt in spans:
            lo, hi = max(0, off - 9), min(size, off + cnt + 9)
            await write_region(host, region, lo, bytes(hi - lo))
            data = bytes(rng.randrange(256) for _ in range(cnt))
            await write_region(host, region, off, data, chunk=rng.choice([None, 1, 7, 64]))
            want = bytes(off - lo) + data + bytes(hi - off - cnt)
            back = await read_region(host, region, lo, hi - lo, chunk=rng.choice([MAX_PAYLOAD - 1, 100]))
            assert back == want, f"{region.name} span {off}+{cnt}: read-back differs at byte " \
                f"{lo + next(i for i in range(len(want)) if back[i] != want[i])}"
            n += 1
        assert await host.ok(C.READ_MEM, request_payload(C.READ_MEM, region=region, offset=size,
                                                         count=0)) == b""
    return {"writes": n}


async def errors(host, tp: TopParams, rng: random.Random) -> dict:
    """Every NACK code a request can earn outside a run, each followed by a command that works."""
    g = tp.gemv
    lay = g.layout
    wsize = tp.region_bytes[Region.WEIGHTS]

    def rm(**kw):
        return pack_bytes(PAYLOADS[C.READ_MEM], **kw)

    def desc(base=0, **kw):
        f = {"k": g.group_size, "n": 1, "fmt_set": 0, "path": 0,
             **({"planes": 0} if g.lut else {}), **kw}
        return load_payload(tp, lay.cmd.pack(**f), base)

    one_beats = g.group_size // g.lanes               # weight beats of the layer desc() loads

    cases = [
        (0x00, b"", E.UNKNOWN_COMMAND), (0x0B, b"", E.UNKNOWN_COMMAND), (0x7F, b"\x01", E.UNKNOWN_COMMAND),
        (C.STATUS, b"\x00", E.BAD_LENGTH), (C.CAPABILITIES, b"\x01\x02", E.BAD_LENGTH),
        (C.WRITE_MEM, b"\x00\x00\x00\x00", E.BAD_LENGTH),
        (C.READ_MEM, rm(region=0, offset=0, count=1)[:-1], E.BAD_LENGTH),
        (C.LOAD_LAYER, desc() + b"\x00", E.BAD_LENGTH), (C.RUN, b"\x00", E.BAD_LENGTH),
        (C.SET_PRECISION, b"", E.BAD_LENGTH),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01", region=Region.RESULTS, offset=0), E.BAD_FIELD),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01", region=3, offset=0), E.BAD_FIELD),
        (C.READ_MEM, rm(region=3, offset=0, count=1), E.BAD_FIELD),
        (C.READ_MEM, rm(region=0, offset=0, count=MAX_PAYLOAD), E.BAD_FIELD),
        (C.SET_PRECISION, bytes([tp.max_precision + 1]), E.BAD_FIELD),
        (C.LOAD_LAYER, desc(k=0), E.BAD_FIELD), (C.LOAD_LAYER, desc(k=g.group_size + g.lanes), E.BAD_FIELD),
        (C.LOAD_LAYER, desc(k=g.max_k + g.group_size), E.BAD_FIELD), (C.LOAD_LAYER, desc(n=0), E.BAD_FIELD),
        (C.LOAD_LAYER, desc(n=g.max_n + 1), E.BAD_FIELD),
        (C.LOAD_LAYER, desc(fmt_set=len(g.format_sets)), E.BAD_FIELD)
        if len(g.format_sets) < 1 << lay.set_bits else None,
        *([(C.LOAD_LAYER, desc(path=1, planes=0), E.BAD_FIELD),
           (C.LOAD_LAYER, desc(path=1, planes=g.lut.max_planes + 1), E.BAD_FIELD)]
          if g.lut else [(C.LOAD_LAYER, desc(path=1), E.BAD_FIELD)]),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01\x02", region=0, offset=wsize - 1), E.OUT_OF_BOUNDS),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01", region=1, offset=0xFFFFFFFF), E.OUT_OF_BOUNDS),
        (C.READ_MEM, rm(region=0, offset=wsize - 10, count=11), E.OUT_OF_BOUNDS),
        (C.READ_MEM, rm(region=2, offset=tp.region_bytes[Region.RESULTS], count=1), E.OUT_OF_BOUNDS),
        (C.READ_RESULTS, pack_bytes(PAYLOADS[C.READ_RESULTS], offset=0, count=1), E.NOT_READY),
        # a weight base that puts the layer's last beat one past the region, or far past it
        (C.LOAD_LAYER, desc(base=tp.weight_beats - one_beats + 1), E.OUT_OF_BOUNDS),
        (C.LOAD_LAYER, desc(base=tp.weight_beats), E.OUT_OF_BOUNDS),
        (C.LOAD_LAYER, desc(base=0xFFFFFFFF), E.OUT_OF_BOUNDS),
        (C.LOAD_LAYER, desc()[:-1], E.BAD_LENGTH),
    ]
    if lay.cmd.size < 8 * tp.desc_bytes:                       # padding bits must be zero
        word = int.from_bytes(desc()[-tp.desc_bytes:], "little") | 1 << lay.cmd.size
        cases.append((C.LOAD_LAYER, load_payload(tp, word), E.BAD_FIELD))
    # a layer whose weights do not fit the weights region
    need = lay.blocks(g.max_n) * (g.max_k // g.lanes)
    if need > tp.weight_beats:
        cases.append((C.LOAD_LAYER, desc(k=g.max_k, n=g.max_n), E.OUT_OF_BOUNDS))
    cases = [c for c in cases if c is not None]
    rng.shuffle(cases)
    for cmd, payload, want in cases:
        await host.nack(cmd, payload, want, f"{cmd:#04x} {payload.hex()}")
        if rng.random() < 0.3:
            assert await host.ok(C.CAPABILITIES) == tp.capabilities_bytes()
    st = await status(host)
    assert st["frames_bad"] == 0 and st["state"] == EngineState.IDLE, st
    return {"nacks": len(cases)}


async def not_ready(host, tp: TopParams, rng: random.Random) -> dict:
    """RUN before any LOAD_LAYER (must be the first scenario after reset or RESET keeps the layer,
    so this runs on a fresh device)."""
    await host.nack(C.RUN, b"", E.NOT_READY, "RUN before LOAD_LAYER")
    await host.nack(C.READ_RESULTS, request_payload(C.READ_RESULTS, offset=0, count=4), E.NOT_READY)
    return {"nacks": 2}


async def retries(host, tp: TopParams, rng: random.Random) -> dict:
    """A repeated (seq, cmd) is answered again without executing again; pure commands re-execute."""
    off = rng.randrange(tp.region_bytes[Region.ACTIVATIONS] - 4)
    first, second = b"\x11\x22\x33\x44", b"\x55\x66\x77\x88"
    seq = host.next_seq()
    await host.ok(C.WRITE_MEM, request_payload(C.WRITE_MEM, first, region=1, offset=off), seq=seq)
    await host.ok(C.WRITE_MEM, request_payload(C.WRITE_MEM, second, region=1, offset=off), seq=seq)
    assert await read_region(host, Region.ACTIVATIONS, off, 4) == first, "a retried WRITE_MEM executed"
    # a retried NACK repeats its code, even though the retry itself would be legal now
    seq = host.next_seq()
    await host.nack(C.SET_PRECISION, bytes([tp.max_precision + 1]), E.BAD_FIELD, seq=seq)
    await host.nack(C.SET_PRECISION, bytes([0]), E.BAD_FIELD, "retried SET_PRECISION", seq=seq)
    # same seq, other command: a new request (STATUS), after which the same SET_PRECISION
    # is no longer a retry
    assert (await status_seq(host, seq))["precision"] == 0
    await host.ok(C.SET_PRECISION, bytes([1]), seq=seq)
    assert (await status(host))["precision"] == 1
    await host.ok(C.SET_PRECISION, bytes([0]))
    # a retried STATUS reads anew: frames_ok moved on
    seq = host.next_seq()
    a = unpack_bytes(RESPONSES[C.STATUS], await host.ok(C.STATUS, seq=seq))
    b = unpack_bytes(RESPONSES[C.STATUS], await host.ok(C.STATUS, seq=seq))
    assert b["frames_ok"] == (a["frames_ok"] + 1) & 0xFFFF
    return {"retries": 4}


async def frame_errors(host, tp: TopParams, rng: random.Random) -> dict:
    """Damaged, truncated, oversize and length-lying frames get no answer, are counted with
    golden.protocol.FrameDecoder's code, write nothing, and the next valid command succeeds."""
    zeros = bytes(40)
    await write_region(host, Region.ACTIVATIONS, 0, zeros)
    st0 = await status(host)
    good = encode_frame(0x42, C.CAPABILITIES)
    payload = request_payload(C.WRITE_MEM, b"\xAA" * 40, region=Region.ACTIVATIONS, offset=0)
    wire_w = encode_frame(0x43, C.WRITE_MEM, payload)
    raw = pack_bytes(FRAME_HEADER, seq=0x44, cmd=C.WRITE_MEM, length=len(payload)) + payload
    bad_crc = cobs.encode(raw + ((crc32c(raw) ^ 1).to_bytes(CRC_BYTES, "little"))) + bytes([DELIMITER])
    cases = [
        bad_crc,
        wire_w[:len(wire_w) // 2] + bytes([DELIMITER]),
        bytes(rng.randrange(1, 256) for _ in range(MAX_ENCODED + 5)) + bytes([DELIMITER]),
        good[:-1] + good,                            # a lost delimiter joins two frames
        good + bytes([DELIMITER, 0x03, 0x01, DELIMITER]),   # answered, idle fill, truncated
    ]
    codes = set()
    for n, wire in enumerate(cases, 1):
        want = FrameDecoder().feed(wire)
        bad = [r for r in want if isinstance(r, FrameError)]
        ok = [r for r in want if not isinstance(r, FrameError)]
        await host.send(wire)
        if ok:                                       # a valid frame among them is answered
            await host.wait_frames(len(ok))
        await host.quiet(host.byte_cycles * (len(wire) + 40) + 200)
        st = await status(host)
        assert st["frames_bad"] == (st0["frames_bad"] + len(bad)) & 0xFFFF, (n, st)
        assert st["last_frame_error"] == bad[-1].error, (n, bad, st)
        codes.add(bad[-1].error)
        st0 = st
        assert await host.ok(C.CAPABILITIES) == tp.capabilities_bytes()
    assert {E.BAD_CRC, E.TRUNCATED, E.OVERSIZE, E.BAD_LENGTH} <= codes, codes
    assert await read_region(host, Region.ACTIVATIONS, 0, 40) == zeros, "a dropped frame wrote"
    # garbage without a delimiter, then a valid frame right behind it: the frame is lost with
    # the garbage (one bad frame); the host's retry gets through
    await host.send(bytes(rng.randrange(1, 256) for _ in range(13)))
    await host.send(good)
    await host.quiet(host.byte_cycles * 60 + 200)
    assert await host.ok(C.CAPABILITIES) == tp.capabilities_bytes()
    return {"bad_frames": len(cases) + 1}


async def pipelined(host, tp: TopParams, rng: random.Random, frames: int = 6) -> dict:
    """WRITE_MEM frames sent back to back without waiting for answers (sw_driver's window): every
    one is answered OK, in order, and the region holds all of them."""
    size = tp.region_bytes[Region.WEIGHTS]
    n = min(300, size // frames)
    data = bytes(rng.randrange(256) for _ in range(n * frames))
    seqs = []
    for i in range(frames):
        seqs.append(host.next_seq())
        await host.send(encode_frame(seqs[-1], C.WRITE_MEM, request_payload(
            C.WRITE_MEM, data[i * n:(i + 1) * n], region=Region.WEIGHTS, offset=i * n)))
    got = await host.wait_frames(frames, host.byte_cycles * (n + 40) * frames * 2 + 4000)
    assert [(f.seq, f.cmd, f.payload) for f in got] == \
        [(q, C.WRITE_MEM | RESPONSE_FLAG, bytes([E.OK])) for q in seqs], got
    assert await read_region(host, Region.WEIGHTS, 0, len(data)) == data
    return {"frames": frames}


def _gemvs(tp: TopParams, rng: random.Random, count: int):
    g = tp.gemv
    for i in range(count):
        fmt_set = i % len(g.format_sets)
        fs = g.format_sets[fmt_set]
        k = g.group_size * rng.randint(1, max(1, min(g.max_k // g.group_size, 4)))
        n = rng.randint(1, min(g.max_n, 3 * g.rows + 1))
        while tp.gemv.layout.blocks(n) * k // g.lanes > tp.weight_beats:
            n = max(1, n // 2)
        prec = [0, *range(1, fs.max_terms + 1)][i % (fs.max_terms + 1)]
        yield random_gemv(g, rng, n, k, fmt_set, prec, note=f"gemv{i}")


async def gemvs(host, tp: TopParams, rng: random.Random, count: int = 4) -> dict:
    """GEMVs through the link at every precision and format set, bit-exact with golden.intref."""
    cycles = []
    for g in _gemvs(tp, rng, count):
        st = await run_gemv(host, tp, g)
        cycles.append(st["cycles"])
    return {"gemvs": count, "cycles": cycles}


async def lut_gemvs(host, tp: TopParams, rng: random.Random) -> dict:
    """GEMVs on the shift-add LUT path (descriptor ``path`` 1) at every stored plane count q and
    precision p, bit-exact with golden (verif.lut_stimulus.expected); then a bit-serial GEMV."""
    from verif import lut_stimulus as ls
    from verif.gemv_scenarios import lut_qp

    g = tp.gemv
    if g.lut is None:
        return {"skipped": 1}
    lay, llay = g.layout, g.lut_layout
    step = max(g.group_size, g.lanes)
    n_done = 0
    for q, prec in lut_qp(g):
        k = step * rng.randint(1, max(1, min(g.max_k // step, 2)))
        n = rng.randint(1, 2 * g.rows + 1)
        gs = rng.choice([x for x in (8, 16, 32) if k % x == 0])
        lg = ls.random_gemv(g.lut, rng, q, "row", n, k, gs, prec)
        w = lay.to_bytes(llay.weight_beats(lg.bw, prec or None))
        ab = tp.region_beat_bytes[Region.ACTIVATIONS]
        a = b"".join(x.to_bytes(ab, "little") for x in lay.act_beats(lg.x))
        # LOAD_LAYER bounds the base by the q-plane stream, whatever precision then runs
        q_beats = len(llay.weight_beats(lg.bw, None))
        base = rng.choice([0, rng.randrange(tp.weight_beats - q_beats + 1)])
        wb = tp.region_beat_bytes[Region.WEIGHTS]
        d = load_payload(tp, lay.cmd_word(k=k, n=n, path=1, planes=q), base)
        await write_region(host, Region.WEIGHTS, base * wb, w)
        await write_region(host, Region.ACTIVATIONS, 0, a)
        await host.ok(C.LOAD_LAYER, d)
        await host.ok(C.SET_PRECISION, bytes([prec]))
        await host.ok(C.RUN)
        st = await wait_done(host)
        assert st["state"] == EngineState.DONE, st
        nres = lay.blocks(n) * tp.region_beat_bytes[Region.RESULTS]
        got = results_of(tp, await read_region(host, Region.RESULTS, 0, nres, cmd=C.READ_RESULTS), n)
        assert got == ls.expected(g.lut, lg), f"LUT path q={q} p={prec} N={n} K={k} differs"
        n_done += 1
    await run_gemv(host, tp, random_gemv(g, rng, g.rows + 1, g.group_size, 0, 0, note="after LUT"))
    return {"lut_gemvs": n_done}


async def busy(host, tp: TopParams, rng: random.Random, exact: bool = True) -> dict:
    """A request during a run gets its defined answer; ABORT stops the run; RESET clears the
    error flags; the next run completes (bit-exact with golden when ``exact``).

    ``exact=False`` (the UART pins, where writing a long layer costs ~140 times its run) runs the
    longest layer over whatever the weights region holds: every format id of the first format set
    is legal, so any bytes are a valid weight stream; only the states and codes are checked."""
    g = tp.gemv
    lay = g.layout
    n = g.max_n
    while lay.blocks(n) * g.max_k // g.lanes > tp.weight_beats:
        n //= 2
    assert len(g.format_sets[0].formats) == 1 << lay.id_bits or exact
    big = random_gemv(g, rng, n, g.max_k, 0, 0, note="long")
    w, a, d = gemv_bytes(tp, big)
    if exact:
        await write_region(host, Region.WEIGHTS, 0, w)
    await write_region(host, Region.ACTIVATIONS, 0, a)
    await host.ok(C.LOAD_LAYER, d)
    await host.ok(C.SET_PRECISION, bytes([0]))
    # RUN, then every probe and ABORT back to back (pipelined), so they all land during the run
    rr = request_payload(C.READ_RESULTS, offset=0, count=4)
    probes = [
        (C.RUN, b"", E.OK), (C.STATUS, b"", E.OK), (C.RUN, b"", E.BUSY),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01", region=0, offset=0), E.BUSY),
        (C.WRITE_MEM, request_payload(C.WRITE_MEM, b"\x01", region=1, offset=0), E.BUSY),
        (C.LOAD_LAYER, d, E.BUSY), (C.SET_PRECISION, bytes([1]), E.BUSY),
        (C.READ_MEM, request_payload(C.READ_MEM, region=0, offset=0, count=4), E.BUSY),
        (C.READ_MEM, request_payload(C.READ_MEM, region=2, offset=0, count=4), E.BUSY),
        (C.READ_RESULTS, rr, E.NOT_READY),
        (C.READ_MEM, request_payload(C.READ_MEM, region=1, offset=0, count=8), E.OK),
        (C.STATUS, b"", E.OK), (C.ABORT, b"", E.OK), (C.STATUS, b"", E.OK),
    ]
    answers = await host.batch([(c, pl) for c, pl, _ in probes])
    for (c, _, want), (code, _data) in zip(probes, answers):
        assert code == want, f"{C(c).name} during a run: {code}, want {want.name}"
    sts = [unpack_bytes(RESPONSES[C.STATUS], dt) for (c, _, _), (_, dt) in zip(probes, answers)
           if c == C.STATUS]
    assert answers[10][1] == a[:8], "READ_MEM of the activations during a run"
    assert sts[0]["state"] == sts[1]["state"] == EngineState.RUNNING, \
        f"the run ended before ABORT (make the layer longer): {sts}"
    assert sts[2]["state"] == EngineState.IDLE and sts[2]["flags"] >> _FLAG["err_abort"] & 1, sts
    await host.nack(C.READ_RESULTS, request_payload(C.READ_RESULTS, offset=0, count=4), E.NOT_READY)
    await host.ok(C.ABORT)                             # nothing running: a no-op
    await host.ok(C.RESET)
    st = await status(host)
    assert st["state"] == EngineState.IDLE and st["flags"] == 0, st
    # RUN again: the whole GEMV, exact (a retried RUN answers without starting a second one)
    seq = host.next_seq()
    await host.ok(C.RUN, seq=seq)
    await host.ok(C.RUN, seq=seq)
    st = await wait_done(host)
    assert st["state"] == EngineState.DONE, st
    if exact:
        nres = lay.blocks(big.n) * tp.region_beat_bytes[Region.RESULTS]
        got = results_of(tp, await read_region(host, Region.RESULTS, 0, nres, cmd=C.READ_RESULTS),
                         big.n)
        assert got == expected(g, big), "GEMV after abort/reset differs from golden"
    # RESET during a run
    await host.ok(C.RUN)
    await host.ok(C.RESET)
    st = await status(host)
    assert st["state"] == EngineState.IDLE and st["flags"] == 0, st
    return {"cycles": st["cycles"]}


async def engine_error(host, tp: TopParams, rng: random.Random) -> dict:
    """A weight beat with a format id outside the layer's set: the engine stops, STATUS says
    ERROR with ``err_format``, READ_RESULTS is NOT_READY, RESET recovers."""
    g = tp.gemv
    si = next((i for i, fs in enumerate(g.format_sets) if len(fs.formats) < 1 << g.layout.id_bits), None)
    if si is None:
        return {"skipped": 1}
    good = random_gemv(g, rng, g.rows, g.group_size, si, 0, note="bad format id")
    w, a, d = gemv_bytes(tp, good)
    lay = g.layout
    beats = lay.from_bytes(w)
    v = lay.weights.unpack(beats[0])
    v["fmt"][0] = len(g.format_sets[si].formats)
    beats[0] = lay.weights.pack(**v)
    await write_region(host, Region.WEIGHTS, 0, lay.to_bytes(beats))
    await write_region(host, Region.ACTIVATIONS, 0, a)
    await host.ok(C.LOAD_LAYER, d)
    await host.ok(C.RUN)
    st = await wait_done(host)
    assert st["state"] == EngineState.ERROR and st["flags"] >> _FLAG["err_format"] & 1, st
    await host.nack(C.READ_RESULTS, request_payload(C.READ_RESULTS, offset=0, count=1), E.NOT_READY)
    await host.ok(C.RESET)
    assert (await status(host))["flags"] == 0
    await run_gemv(host, tp, random_gemv(g, rng, g.rows + 1, g.group_size, si, 0, note="after error"))
    return {"errors": 1}


async def based(host, tp: TopParams, rng: random.Random) -> dict:
    """Layers resident side by side at their own weight bases: each written once, then run in a
    shuffled order (some twice) by LOAD_LAYER with its base alone, bit-exact with golden; a layer
    ending at the region's last beat runs; one more beat of base is OUT_OF_BOUNDS and leaves the
    loaded layer as it was."""
    g = tp.gemv
    wb = tp.region_beat_bytes[Region.WEIGHTS]
    last = random_gemv(g, rng, g.rows, g.group_size, 0, 0, note="at the region's end")
    end_base = tp.weight_beats - g.group_size // g.lanes
    layers, base = [], 0
    for g1 in _gemvs(tp, rng, 3):
        beats = tp.gemv.layout.blocks(g1.n) * g1.k // g.lanes
        gap = rng.randint(0, 3)
        if base + gap + beats > end_base:
            break
        layers.append((g1, base + gap))
        base += gap + beats
    layers.append((last, end_base))
    for g1, b in layers:                                   # place every layer once
        await write_region(host, Region.WEIGHTS, b * wb, gemv_bytes(tp, g1, b)[0])
    order = layers + [rng.choice(layers) for _ in range(2)]
    rng.shuffle(order)
    for g1, b in order:                                    # run them: activations only
        await run_gemv(host, tp, g1, b, write=False)
    g1, b = order[-1]
    _, _, d = gemv_bytes(tp, last, end_base + 1)
    await host.nack(C.LOAD_LAYER, d, E.OUT_OF_BOUNDS, "layer one beat past the weights region")
    await host.ok(C.RUN)                                   # the previous layer is still loaded
    st = await wait_done(host)
    assert st["state"] == EngineState.DONE, st
    nres = tp.gemv.layout.blocks(g1.n) * tp.region_beat_bytes[Region.RESULTS]
    got = results_of(tp, await read_region(host, Region.RESULTS, 0, nres, cmd=C.READ_RESULTS), g1.n)
    assert got == expected(g, g1), "the layer loaded before a refused LOAD_LAYER differs"
    return {"layers": len(layers), "runs": len(order) + 1}


#: name -> scenario; ``not_ready`` must run first on a fresh device.
SCENARIOS = {"not_ready": not_ready, "identity": identity, "memories": memories, "errors": errors,
             "retries": retries, "frame_errors": frame_errors, "pipelined": pipelined,
             "gemvs": gemvs, "lut_gemvs": lut_gemvs, "busy": busy, "engine_error": engine_error,
             "based": based}
