"""`bitmix build --board B`: the bitstream of a design on a board, with its report.

    bitmix build --board icebreaker --design echo
    bitmix build --board ulx3s-85f [design options] [--clk-mhz 75] [--seed 2]

writes ``build/<board>/<design>_<tag>/top.bin`` (iCE40) or ``top.bit`` (ECP5; OrangeCrab also
``top.dfu``), ``report.json`` and ``report.txt`` (:mod:`fpga.bitstream`) and prints the table.
The design's clock and baud rate come from the board (:func:`fpga.boards.clock_plan`), its
other options from :mod:`bitmix.designs` as in ``bitmix elaborate``. Does not fit, or misses
timing: one line naming the resource (used vs available) or the clock (achieved vs required),
exit status 2.
"""

from __future__ import annotations

import json
import sys

from bitmix.argtypes import float_in_range, int_in_range
from bitmix.designs import DESIGNS, UART_DESIGN, Design
from bitmix.errors import BitmixError

__all__ = ["register", "run", "resolve", "board_values", "board_designs", "ECHO"]

#: Options a board fills in from its clock plan and pins (never given by the user to
#: `bitmix build`): the clock, the baud rate, the link mode (the board top speaks UART to the
#: core on every board), the number of status LEDs and the board's name (CAPABILITIES says it).
BOARD_FILLED = {"clk_hz", "baud", "link", "leds", "board"}


def _build_core(design: Design, params, board):
    """The design's component for ``board``: the device top gets the vendor primitives of an
    iCE40 build (SPRAM) instead of their behavioural models."""
    if design.name == "top":
        from fpga.top import DeviceTop

        return DeviceTop(params, primitives=board.family == "ice40")
    return design.build(params)


def _echo_build(p):
    from fpga.board_top import EchoCore

    return EchoCore(p)


#: Link self-test design (UART echo): proves a board's clock, reset, pins and baud divisor.
ECHO = Design(name="echo", summary="UART echo (link self-test: every byte sent back)",
              options=UART_DESIGN.options, make_params=UART_DESIGN.make_params, build=_echo_build,
              info=UART_DESIGN.info, describe=UART_DESIGN.describe)


def board_designs() -> dict[str, Design]:
    """Designs a board can host: those whose options include the clock (``clk_hz``) and that
    are not a bare UART, plus :data:`ECHO`."""
    out = {"echo": ECHO}
    out.update({n: d for n, d in DESIGNS.items()
                if any(o.dest == "clk_hz" for o in d.options) and n not in ("uart", "link")})
    return out


def default_design() -> str:
    return "top" if "top" in board_designs() else "echo"


def register(sub) -> None:
    from fpga.boards import BOARDS

    designs = board_designs()
    p = sub.add_parser("build", help="build a board's bitstream (YoWASP) with a resource and "
                                     "timing report",
                       description=__doc__.splitlines()[0] + " Boards: " + "; ".join(
                           f"{b.name}: {b.title}, {b.osc_hz / 1e6:g} MHz oscillator, default "
                           f"{b.sys_hz / 1e6:g} MHz system clock" for b in BOARDS.values()))
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--design", default=None, choices=sorted(designs),
                   help=f"core in the board top (default {default_design()})")
    seen = set()
    for d in designs.values():
        for o in d.options:
            if o.dest in seen or o.dest in BOARD_FILLED:
                continue
            seen.add(o.dest)
            users = [x.name for x in designs.values() if any(q.dest == o.dest for q in x.options)]
            p.add_argument(f"--{o.flag}", dest=o.dest, default=None,
                           help=o.help + f" [{', '.join(users)}]")
    p.add_argument("--clk-mhz", type=float_in_range("--clk-mhz", 1.0, 400.0), default=None,
                   help="system clock requested from the PLL (default: the board's, see above); "
                        "the nearest the PLL makes is used and reported")
    p.add_argument("--baud", type=int_in_range("--baud", 1200), default=None,
                   help="host-link baud rate (default: the board's, "
                        + ", ".join(f"{b.name} {b.baud}" for b in BOARDS.values()) + ")")
    p.add_argument("--seed", type=int_in_range("--seed", 0), default=1,
                   help="nextpnr placer seed (default 1)")
    p.add_argument("--out", default=None, help="build folder (default build/<board>/<design>_<tag>)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.set_defaults(func=run)


def board_values(board_name: str, design_name: str | None = None, user: dict | None = None, *,
                 clk_mhz: float | None = None, baud: int | None = None):
    """The option values ``bitmix build --board`` gives ``design_name`` (default: the device
    top): ``user``'s, else the board's defaults for the design, else the design's; the clock,
    baud rate, link mode and LED count from the board. Returns ``(design, board, plan,
    values)``; ``design.make_params(values)`` is the top the board runs, so the virtual board
    can simulate the same one (``bitmix sim-board``'s ``start_board(values, ...)``)."""
    from fpga.boards import clock_plan, get_board

    designs = board_designs()
    design = designs.get(design_name or default_design())
    if design is None:
        raise BitmixError(f"design {design_name!r} cannot go on a board; choose from "
                          + ", ".join(designs))
    user = {k: v for k, v in (user or {}).items() if v is not None}
    mine = {o.dest for o in design.options}
    for d in designs.values():
        for o in d.options:
            if o.dest not in mine and o.dest in user:
                raise BitmixError(f"--{o.flag} is not an option of design {design.name!r}")
    board = get_board(board_name)
    defaults = dict(board.design_defaults)
    values = {o.dest: user.get(o.dest, defaults.get(o.dest, o.default)) for o in design.options}
    plan = clock_plan(board, clk_mhz * 1e6 if clk_mhz else None, baud)
    leds = next((o.default for o in design.options if o.dest == "leds"), 0)
    filled = {"clk_hz": round(plan.sys_hz), "baud": plan.baud, "link": "uart",
              "leds": max(1, min(leds, board.led_pins - 1)),   # the first LED: the heartbeat
              "board": board.name}
    values.update({k: v for k, v in filled.items() if k in mine})
    return design, board, plan, values


def resolve(args):
    """(design, board, clock plan, validated parameters) of a `bitmix build` command line."""
    user = {o.dest: getattr(args, o.dest, None) for d in board_designs().values()
            for o in d.options if o.dest not in BOARD_FILLED}
    design, board, plan, values = board_values(args.board, args.design, user,
                                               clk_mhz=args.clk_mhz, baud=args.baud)
    # build_bitstream derives the same plan again (same inputs): the core is made for it
    return design, board, plan, design.make_params(values)


def run(args) -> int:
    from fpga.bitstream import build_bitstream, format_report

    design, board, plan, params = resolve(args)
    report = build_bitstream(board.name, lambda _plan: _build_core(design, params, board),
                             tag=(params.tag if params.tag.startswith(design.name)
                                  else f"{design.name}_{params.tag}"), sys_hz=plan.requested_hz,
                             baud=plan.baud, seed=args.seed, out=args.out,
                             info=design.info(params), progress=not args.json)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
        print(f"wrote {report['bitstream']} and {report['build_dir']}/report.json",
              file=sys.stderr)
    return 0
