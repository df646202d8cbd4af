"""`bitmix bench link`: the host link through the virtual board, measured in simulated time
(JSON + table).

* **Payload efficiency** = weight bytes ÷ (simulated seconds from the first request byte entering
  the device to the last answer byte leaving it) ÷ (baud / 10), while the driver streams the whole
  weights region through the UART pins bit by bit (``--link uart`` of the virtual board, the real
  top's UART at ``--baud`` from ``--clk-hz``). Measured side by side for stop-and-wait
  (window 1) and for the driver's pipelined writes (``--window``). The ceiling is the framing:
  507 data bytes per 523 to 525 bytes on the line (header 4, write address 5, CRC 4, COBS 1 to 3,
  two delimiters), 0.965 to 0.969.
  Simulated time, not wall time: the Verilator model is far slower than a board, so how long the
  host takes to answer counts in simulated cycles only while the model runs; pipelining keeps the
  line busy regardless.
* **Round trip** of a small command (STATUS) in clock cycles: from the first request byte's start
  bit to the last answer byte's stop bit, with how many of those cycles the bytes themselves take
  on the line.
* **Faults**: a transport that flips and drops bytes in both directions at ``--flip`` /
  ``--drop`` per byte (``sw_driver.transport.FaultInjector``) on the byte-stream board: weights
  written and read back, GEMVs run and compared with golden.intref; retries, damaged answers,
  device-dropped frames and wrong results (must be 0) are counted.
* **Fuzz**: :func:`verif.link_fuzz.fuzz_device` (``--fuzz`` sequences over the byte-stream link,
  ``--fuzz-uart`` through the UART pins): the device's dropped-frame count against golden's.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

__all__ = ["register", "run", "run_bench", "format_table"]


def register(bsub) -> None:
    from bitmix.argtypes import float_in_range, int_in_range

    p = bsub.add_parser("link", help="host link through the virtual board: payload efficiency at 3 Mbaud, "
                                     "round trip, fault injection, fuzz",
                        description=__doc__.splitlines()[0])
    p.add_argument("--baud", type=int_in_range("--baud", 1), default=3_000_000,
                   help="baud rate (default 3000000)")
    p.add_argument("--clk-hz", type=int_in_range("--clk-hz", 1), default=12_000_000,
                   help="top clock (default 12000000)")
    p.add_argument("--window", type=int_in_range("--window", 2, 64), default=4,
                   help="pipelined writes in flight (default 4)")
    p.add_argument("--flip", type=float_in_range("--flip", 0.0, 1.0), default=2e-4,
                   help="fault rate: bit flips per byte (default 2e-4)")
    p.add_argument("--drop", type=float_in_range("--drop", 0.0, 1.0), default=2e-4,
                   help="fault rate: dropped bytes per byte (default 2e-4)")
    p.add_argument("--gemvs", type=int_in_range("--gemvs", 0), default=12,
                   help="GEMVs run under faults (default 12)")
    p.add_argument("--fuzz", type=int_in_range("--fuzz", 0), default=2000,
                   help="fuzz sequences over the byte-stream link (default 2000)")
    p.add_argument("--fuzz-uart", type=int_in_range("--fuzz-uart", 0), default=300,
                   help="fuzz sequences through the UART pins (default 300)")
    p.add_argument("--seed", type=int_in_range("--seed", 0, 2**32 - 1), default=1, help="seed (default 1)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for link.json")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def _board(link: str, values: dict):
    from bitmix.cmd_sim_board import start_board

    return start_board(values, link=link, persist=True)   # several driver sessions per board


def _stream(board, dev, data: bytes) -> dict:
    """Write ``data`` to the weights region inside a measurement window; the window's figures."""
    from golden.protocol import Region

    dev.status()
    board.mark()
    t0 = time.monotonic()
    dev.write_mem(Region.WEIGHTS, 0, data, progress=False)
    wall = time.monotonic() - t0
    st = board.stats()
    cycles = st["window_last_tx_cycle"] - st["window_first_rx_cycle"]
    p = board.params
    sim_s = cycles / p.clk_hz
    return {"payload_bytes": len(data), "wire_bytes_in": st["window_rx_bytes"],
            "wire_bytes_out": st["window_tx_bytes"], "cycles": cycles, "simulated_seconds": sim_s,
            "payload_bytes_per_second": len(data) / sim_s,
            "efficiency": len(data) / sim_s / (p.baud / 10), "wall_seconds": round(wall, 3),
            "sim_cycles_per_second": st["cycles_per_second"],
            "sim_cycles_per_cpu_second": st["cycles_per_cpu_second"]}


def _efficiency(values: dict, window: int, seed: int, log) -> dict:
    from golden.protocol import Region
    from sw_driver.device import Device

    rng = random.Random(seed)
    out = {}
    with _board("uart", values) as board:
        p = board.params
        data = bytes(rng.randrange(256) for _ in range(p.region_bytes[Region.WEIGHTS]))
        for w in (1, window):
            with Device.open(board.device, expect=p, window=w, progress=False, timeout=5.0) as dev:
                r = _stream(board, dev, data)
                r["retries"] = dev.transport.core.stats.retries
                assert dev.read_mem(Region.WEIGHTS, 0, len(data)) == data, "weights read back differ"
                r["verified"] = True
                out[f"window_{w}"] = r
                log(f"  window {w}: efficiency {r['efficiency']:.3f} ({r['cycles']} cycles)")
        with Device.open(board.device, expect=p, progress=False, timeout=5.0) as dev:
            for _ in range(3):
                dev.status()
            board.mark()
            n = 50
            for _ in range(n):
                dev.status()
            st = board.stats()
            # on the line: the request after its leading delimiter, then the whole answer (the
            # round trip ends mid stop bit, where the host's UART samples it)
            line = ((st["window_rx_bytes"] / n - 1) + st["window_tx_bytes"] / n) * 10 * p.divisor \
                - p.divisor // 2
            out["round_trip"] = {"command": "STATUS", "count": st["round_trips"],
                                 "cycles_min": st["round_trip_cycles_min"],
                                 "cycles_mean": st["round_trip_cycles_mean"],
                                 "cycles_max": st["round_trip_cycles_max"],
                                 "microseconds_mean": st["round_trip_cycles_mean"] / p.clk_hz * 1e6,
                                 "line_cycles": line,
                                 "device_cycles": st["round_trip_cycles_mean"] - line}
        out["params"] = {"clk_hz": p.clk_hz, "baud": p.baud, "divisor": p.divisor, "hash": p.hash,
                         "weights_region_bytes": p.region_bytes[Region.WEIGHTS]}
    return out


def _faults(values: dict, flip: float, drop: float, gemvs: int, seed: int, log) -> dict:
    from golden.protocol import Region
    from sw_driver.device import Device
    from sw_driver.transport import FaultInjector
    from verif.gemv_stimulus import expected, quantized_gemv

    rng = random.Random(seed)
    fault = FaultInjector(flip=flip, drop=drop, seed=seed)
    wrong = checked = 0
    t0 = time.monotonic()
    with _board("bytes", values) as board:
        p = board.params
        with Device.open(board.device, expect=p, progress=False, timeout=0.1, retries=12) as clean:
            bad0 = clean.status()["frames_bad"]
        with Device.open(board.device, expect=p, progress=False, timeout=0.1, retries=12,
                         fault=fault) as dev:
            for _ in range(2):
                data = bytes(rng.randrange(256) for _ in range(p.region_bytes[Region.WEIGHTS]))
                dev.write_mem(Region.WEIGHTS, 0, data)
                back = dev.read_mem(Region.WEIGHTS, 0, len(data))
                wrong += sum(a != b for a, b in zip(back, data))
                checked += len(data)
            g = p.gemv
            rows_checked = 0
            for i in range(gemvs):
                q = quantized_gemv(g, seed + i, g.max_n, g.max_k, precision=i % (g.max_terms + 1))
                dev.load_layer(q.codes, q.fmt_ids, q.u)
                got = dev.gemv(q.x, precision=q.precision)
                want = expected(g, q)
                wrong += sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))
                rows_checked += len(want)
            s = dev.transport.core.stats
            res = {"flip_rate": flip, "drop_rate": drop, "bytes_flipped": dict(fault.flipped),
                   "bytes_dropped": dict(fault.dropped), "requests": s.requests, "retries": s.retries,
                   "timeouts": s.timeouts, "recovered_requests": s.recovered,
                   "damaged_answers": s.bad_frames, "stale_answers": s.stale,
                   "memory_bytes_checked": checked, "gemvs": gemvs, "result_rows_checked": rows_checked,
                   "wrong_results": wrong}
        with Device.open(board.device, expect=p, progress=False, timeout=0.5) as clean:
            res["device_frames_dropped"] = (clean.status()["frames_bad"] - bad0) % (1 << 16)
    res["wall_seconds"] = round(time.monotonic() - t0, 2)
    log(f"  faults: {res['retries']} retries, {res['device_frames_dropped']} frames dropped by the "
        f"device, {res['damaged_answers']} damaged answers, {wrong} wrong results")
    return res


def _fuzz(values: dict, link: str, n: int, seed: int, log) -> dict:
    from sw_driver.device import Device
    from verif.link_fuzz import fuzz_device

    t0 = time.monotonic()
    with _board(link, values) as board:
        with Device.open(board.device, expect=board.params, progress=False, timeout=2.0) as dev:
            r = fuzz_device(dev, n, seed=seed)
    r["link"] = link
    r["wall_seconds"] = round(time.monotonic() - t0, 2)
    r["frames_bad_match"] = r["device_frames_bad"] == r["expected_frames_bad"]
    log(f"  fuzz ({link}): {n} sequences, {r['device_frames_bad']} frames dropped "
        f"(golden: {r['expected_frames_bad']}), {r['nacks_seen']} NACKs, "
        f"{r['valid_commands']} valid commands OK")
    return r


def run_bench(*, baud=3_000_000, clk_hz=12_000_000, window=4, flip=2e-4, drop=2e-4, gemvs=12,
              fuzz=2000, fuzz_uart=300, seed=1, log=print) -> dict:
    values = {"clk_hz": clk_hz, "baud": baud}
    t0 = time.monotonic()
    log("efficiency and round trip (uart link)...")
    eff = _efficiency(values, window, seed, log)
    log("fault injection (bytes link)...")
    faults = _faults(values, flip, drop, gemvs, seed, log)
    fz = []
    for link, n in (("bytes", fuzz), ("uart", fuzz_uart)):
        if n:
            log(f"fuzz ({link} link)...")
            fz.append(_fuzz(values, link, n, seed, log))
    return {"bench": "link", "schema": 1, **eff, "faults": faults, "fuzz": fz,
            "fuzz_sequences_total": sum(r["sequences"] for r in fz),
            "total_seconds": round(time.monotonic() - t0, 1)}


def format_table(r: dict) -> str:
    p = r["params"]
    lines = [f"host link through the virtual board: {p['baud']} baud, {p['clk_hz'] / 1e6:g} MHz "
             f"(divisor {p['divisor']}), {p['weights_region_bytes']} weight bytes streamed", "",
             "| writes | payload B/s | ÷ baud/10 | cycles | retries | sim cycles/s |",
             "|---|---|---|---|---|---|"]
    for key, v in r.items():
        if key.startswith("window_"):
            w = key.split("_")[1]
            lines.append(f"| {'stop-and-wait' if w == '1' else f'pipelined, window {w}'} | "
                         f"{v['payload_bytes_per_second']:,.0f} | **{v['efficiency']:.3f}** | "
                         f"{v['cycles']:,} | "
                         f"{v['retries']} | {v['sim_cycles_per_second'] / 1e6:.2f} M |")
    rt = r["round_trip"]
    lines += ["", f"round trip of {rt['command']}: {rt['cycles_mean']:.0f} cycles "
                  f"({rt['microseconds_mean']:.0f} µs; min {rt['cycles_min']}, max {rt['cycles_max']}), "
                  f"of which {rt['line_cycles']:.0f} the bytes on the line"]
    f = r["faults"]
    lines += ["", f"faults (flip {f['flip_rate']:g}, drop {f['drop_rate']:g} per byte, both directions): "
                  f"{sum(f['bytes_flipped'].values())} bytes flipped, "
                  f"{sum(f['bytes_dropped'].values())} dropped; "
                  f"{f['requests']} requests, {f['retries']} retries, {f['recovered_requests']} recovered, "
                  f"{f['timeouts']} failed, "
                  f"{f['device_frames_dropped']} frames dropped by the device, "
                  f"{f['damaged_answers']} damaged answers; {f['memory_bytes_checked']} bytes and "
                  f"{f['result_rows_checked']} GEMV rows checked: **{f['wrong_results']} wrong**"]
    for z in r["fuzz"]:
        lines.append(f"fuzz ({z['link']}): {z['sequences']} sequences + {z['valid_commands']} valid "
                     "commands; "
                     f"device dropped {z['device_frames_bad']} frames (golden {z['expected_frames_bad']}), "
                     f"NACKed {z['nacks_seen']} (expected {z['expected_nacks']}), retries {z['retries']}, "
                     f"{z['memory_verified_bytes']} bytes verified")
    return "\n".join(lines)


def run(args) -> int:
    import sys

    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    result = run_bench(baud=args.baud, clk_hz=args.clk_hz, window=args.window, flip=args.flip,
                       drop=args.drop, gemvs=args.gemvs, fuzz=args.fuzz, fuzz_uart=args.fuzz_uart,
                       seed=args.seed, log=log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jp = out / "link.json"
    jp.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print()
    print(format_table(result))
    print(f"\njson: {jp}")
    return 0
