"""`bitmix sim-board`: the virtual board, the FPGA top under Verilator behind a pseudo-terminal.

    bitmix sim-board &                      # byte-stream link (default), prints the device path
    bitmix sim-board --link uart --baud 3000000
    bitmix sim-board --board icebreaker     # exactly the top `bitmix build --board icebreaker` builds

builds (once; cached under ``build/sim_board/``) and starts :mod:`verif.sim_board`'s harness for
the registry's ``top`` design, prints the pty to open with ``sw_driver`` and the top's manifest
(its parameters), then a line of statistics every ``--report`` seconds (simulated cycles,
cycles per second, bytes moved). It stops on Ctrl-C / SIGTERM and when the driver closes the
port (unless ``--persist``).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from bitmix.argtypes import int_in_range

__all__ = ["register", "run", "start_board", "board_top_values"]


def _top_options():
    from bitmix.designs import DESIGNS

    d = DESIGNS.get("top")
    return () if d is None else tuple(o for o in d.options if o.dest != "link")


def register(sub) -> None:
    from verif.sim_board import DEFAULT_LINK, LINKS

    p = sub.add_parser("sim-board", help="start the virtual board (the FPGA top under Verilator "
                                         "behind a pseudo-terminal)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--link", choices=LINKS, default=DEFAULT_LINK,
                   help="bytes: bytes straight into the frame decoder (fast, default); uart: the "
                        "UART pins driven bit by bit at the top's baud rate (cycle-accurate)")
    from fpga.boards import BOARDS

    for o in _top_options():
        if o.dest == "board":
            p.add_argument("--board", choices=sorted(BOARDS), default=None,
                           help="simulate the top `bitmix build --board B` builds (its clock, baud "
                                "rate, LEDs, memories and the board's design defaults; other "
                                "design options as given); CAPABILITIES names the board")
        else:
            p.add_argument(f"--{o.flag}", dest=o.dest, default=None, help=o.help)
    p.add_argument("--idle-after", type=int_in_range("--idle-after", 1), default=None, metavar="CYCLES",
                   help="stop the clock after this many cycles without link traffic (default 2^22)")
    p.add_argument("--persist", action="store_true",
                   help="keep running when the driver closes the port (default: stop)")
    p.add_argument("--report", type=float, default=10.0, metavar="SECONDS",
                   help="print statistics every SECONDS (default 10; 0: only at exit)")
    p.add_argument("--device-file", metavar="PATH",
                   help="also write the device path and manifest as JSON to PATH (for scripts)")
    p.add_argument("--json", action="store_true", help="print the board's JSON event lines")
    p.set_defaults(func=run)


def start_board(values: dict | None = None, *, link: str, **kw):
    """Build the top for ``link`` with option ``values`` and start it; a running
    :class:`verif.sim_board.SimBoard` (``params`` attribute: the top's parameters)."""
    from verif.sim_board import SimBoard, build_top

    exe, params, manifest = build_top(values, link=link)
    board = SimBoard(exe, link=link, clk_hz=params.clk_hz, divisor=params.divisor if link == "uart" else None,
                     manifest=manifest, **kw)
    board.params = params
    return board


def _line(ev: dict) -> str:
    secs = ev["cycles"] / ev["clk_hz"] if ev["clk_hz"] else 0
    return (f"  {ev['cycles'] / 1e6:.1f} M cycles simulated ({secs:.3f} s at "
            f"{ev['clk_hz'] / 1e6:g} MHz), {ev['cycles_per_second'] / 1e6:.2f} M cycles/s while "
            f"running; {ev['rx_bytes']} bytes in, {ev['tx_bytes']} out, {ev['rx_frames']} frames in")


def board_top_values(values: dict) -> dict:
    """``values`` (sim-board's top options) as ``bitmix build --board values["board"]`` resolves
    them (:func:`bitmix.cmd_build.board_values`); unchanged without a board."""
    from bitmix.cmd_build import BOARD_FILLED, board_values
    from bitmix.errors import BitmixError

    if not values.get("board"):
        return values
    given = sorted(k for k in BOARD_FILLED - {"board"} if values.get(k) is not None)
    if given:
        raise BitmixError(f"sim-board: --{given[0].replace('_', '-')} is set by --board "
                          f"{values['board']} (its clock plan and pins)")
    return board_values(values["board"], "top", values)[3]


def run(args) -> int:
    values = board_top_values({o.dest: getattr(args, o.dest) for o in _top_options()})
    board = start_board(values, link=args.link, idle_after=args.idle_after, persist=args.persist,
                        report=args.report or None)
    info = {"device": board.device, "manifest": str(board.manifest), "link": board.link,
            "clk_hz": board.clk_hz, "pid": board.pid}
    if args.device_file:
        Path(args.device_file).write_text(json.dumps(info) + "\n")
    if args.json:
        print(json.dumps({"event": "board", **info}), flush=True)
    else:
        print(f"virtual board on {board.device} (link {board.link}, clock {board.clk_hz / 1e6:g} MHz)")
        print(f"  manifest {board.manifest}")
        print(f"  python -c \"from sw_driver.device import Device; "
              f"print(Device.open('{board.device}').capabilities)\"", flush=True)
    signal.signal(signal.SIGTERM, lambda *a: board.close())
    seen = 0
    try:
        while board.running or seen < len(board.events):
            board.wait(0.5)
            for ev in board.events[seen:]:
                if ev["event"] in ("stats", "exit"):
                    print(json.dumps(ev) if args.json else
                          (f"stopped ({ev['reason']})\n" if ev["event"] == "exit" else "") + _line(ev),
                          flush=True)
            seen = len(board.events)
    except KeyboardInterrupt:
        pass
    finally:
        board.close()
        for ev in board.events[seen:]:
            if ev["event"] == "exit":
                print(json.dumps(ev) if args.json else f"stopped ({ev['reason']})\n" + _line(ev))
    sys.stdout.flush()
    return 0
