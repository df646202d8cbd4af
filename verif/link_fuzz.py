"""Link fuzzing through a device (the virtual board): damaged, truncated, oversized, delimiter-free
and random frames interleaved with valid commands.

Every damaged sequence is raw bytes written straight to the port between two of the driver's
requests. Its expected effect on the device is ``golden.protocol.FrameDecoder``'s verdicts on the
same bytes: each frame error is one dropped frame (the device's STATUS ``frames_bad`` must grow by
exactly that many), each frame that decodes is answered with a NACK (its command is never one the
valid stream uses, so the answer cannot be mistaken for the driver's: an unknown code, or
SET_PRECISION with a precision no engine has). The valid commands (WRITE_MEM / READ_MEM at random
places of the activations and weights regions, STATUS) must all succeed, and the memory they wrote,
mirrored on the host, is read back and compared at the end.
"""

from __future__ import annotations

import random

from golden.protocol import (
    DELIMITER,
    MAX_ENCODED,
    MAX_PAYLOAD,
    Command,
    Frame,
    FrameDecoder,
    FrameError,
    Region,
    encode_frame,
)

__all__ = ["KINDS", "fuzz_sequence", "fuzz_device"]

#: Kinds of damaged input, in the order :func:`fuzz_device` cycles through them.
KINDS = ("flip", "truncated", "oversize", "no_delimiter", "garbage_prefix", "joined", "random",
         "unknown_command", "bad_field")
#: Command codes of fuzz frames: unknown to the protocol (and one known command with a bad field).
_UNKNOWN = [c for c in range(0x100) if c not in {int(x) for x in Command}
            and c & 0x7F not in {int(x) for x in Command}]


def _base_frame(rng: random.Random, max_len: int = MAX_PAYLOAD) -> bytes:
    """A valid frame that the device must NACK if it arrives intact."""
    n = rng.choice([0, 1, rng.randrange(2, 40), rng.randrange(240, 262), max_len])
    n = min(n, max_len)
    if rng.random() < 0.2:
        return encode_frame(rng.randrange(256), Command.SET_PRECISION, b"\xff")
    payload = bytes(rng.choice((0, rng.randrange(256), rng.randrange(1, 256))) for _ in range(n))
    return encode_frame(rng.randrange(256), rng.choice(_UNKNOWN), payload)


def fuzz_sequence(rng: random.Random, kind: str) -> bytes:
    """One damaged (or NACK-provoking) byte sequence of ``kind``, ending in a delimiter."""
    frame = _base_frame(rng)
    z = bytes([DELIMITER])
    if kind == "flip":
        b = bytearray(frame[:-1])
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b) + z
    if kind == "truncated":
        return frame[:rng.randrange(1, len(frame) - 1)] + z
    if kind == "oversize":
        return bytes(rng.randrange(1, 256) for _ in range(MAX_ENCODED + rng.randint(1, 60))) + z
    if kind == "no_delimiter":
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 80))) + frame
    if kind == "garbage_prefix":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))) + z + frame
    if kind == "joined":
        return frame[:-1] + _base_frame(rng, 20)
    if kind == "random":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) + z
    if kind in ("unknown_command", "bad_field"):
        return frame if kind == "unknown_command" else encode_frame(rng.randrange(256),
                                                                    Command.SET_PRECISION, b"\xff")
    raise ValueError(kind)


def _verdicts(wire: bytes) -> tuple[int, int]:
    """(frames dropped, frames decoded) by golden's decoder."""
    items = FrameDecoder().feed(wire)
    return sum(isinstance(i, FrameError) for i in items), sum(isinstance(i, Frame) for i in items)


def fuzz_device(dev, count: int, *, seed: int = 0, valid_every: int = 1, shadow_weights: int = 2048) -> dict:
    """Send ``count`` damaged sequences through ``dev`` (a :class:`sw_driver.device.Device`),
    one valid command after every ``valid_every`` of them; return the counts. Raises
    AssertionError if a valid command fails or the memory read back differs."""
    rng = random.Random(seed)
    regions = {Region.ACTIVATIONS: dev.params.region_bytes[Region.ACTIVATIONS],
               Region.WEIGHTS: min(shadow_weights, dev.params.region_bytes[Region.WEIGHTS])}
    shadow = {r: bytearray(rng.randrange(256) for _ in range(n)) for r, n in regions.items()}
    for r, data in shadow.items():
        dev.write_mem(r, 0, bytes(data), progress=False)
    stats = dev.transport.core.stats
    st0 = dev.status()
    stale0, retries0 = stats.stale, stats.retries
    counts = {k: 0 for k in KINDS}
    expect_bad = expect_nack = valid = fuzz_bytes = 0
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        wire = fuzz_sequence(rng, kind)
        bad, ok = _verdicts(wire)
        expect_bad, expect_nack = expect_bad + bad, expect_nack + ok
        counts[kind] += 1
        fuzz_bytes += len(wire)
        dev.transport.port.write(wire)
        if (i + 1) % valid_every:
            continue
        valid += 1
        op = rng.random()
        r = rng.choice(list(regions))
        off = rng.randrange(regions[r])
        n = rng.randint(1, min(MAX_PAYLOAD - 5, regions[r] - off))
        if op < 0.45:
            data = bytes(rng.randrange(256) for _ in range(n))
            dev.write_mem(r, off, data, progress=False)
            shadow[r][off:off + n] = data
        elif op < 0.9:
            got = dev.read_mem(r, off, n)
            assert got == bytes(shadow[r][off:off + n]), f"fuzz step {i}: READ_MEM {r.name}@{off} differs"
        else:
            assert dev.status()["state"] is not None
    st1 = dev.status()
    for r, data in shadow.items():
        assert dev.read_mem(r, 0, len(data)) == bytes(data), f"fuzz: {r.name} read-back differs"
    frames_bad = (st1["frames_bad"] - st0["frames_bad"]) % (1 << 16)
    return {"sequences": count, "by_kind": counts, "fuzz_bytes": fuzz_bytes, "valid_commands": valid,
            "expected_frames_bad": expect_bad, "device_frames_bad": frames_bad,
            "expected_nacks": expect_nack, "nacks_seen": stats.stale - stale0,
            "retries": stats.retries - retries0, "memory_verified_bytes": sum(regions.values()),
            "last_frame_error": st1["last_frame_error"]}
