"""`bitmix run --port DEV`: `bitmix demo`'s decode on a device behind any serial port.

    bitmix run --port /dev/ttyUSB1 --board icebreaker      # a board built by `bitmix build`
    bitmix run --port /dev/pts/3 --expect build/board.json # the virtual board (bitmix sim-board)

Opens the port, reads CAPABILITIES and refuses a device that is not the expected top (``--board``:
the top ``bitmix build --board B`` makes; ``--expect``: a top manifest or a ``bitmix sim-board
--device-file``; default: the top's default parameters), then runs the demo's flow (quantize the
reference model for that device, PMPD decode with every linear on it, verified, the same report).
"""

from __future__ import annotations

from bitmix.cmd_demo import add_flow_options, decode_on_device, open_options

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("run", help="the demo's PMPD decode on a board or any port (after the "
                                   "capability check)", description=__doc__.splitlines()[0])
    p.add_argument("--port", required=True, metavar="DEV", help="serial port (/dev/ttyUSB1, a pty, a URL)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--board", metavar="B", help="expect the top `bitmix build --board B` builds")
    who.add_argument("--expect", metavar="FILE",
                     help="expect the top of this manifest / sim-board device file")
    p.add_argument("--timeout", type=float, default=1.0, metavar="S",
                   help="seconds per answer before a retry (default 1)")
    add_flow_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sw_driver.device import Device

    expect = args.expect
    if args.board:
        from bitmix.cmd_build import board_values

        design, _, _, values = board_values(args.board)
        expect = design.make_params(values)
    kw = {"timeout": args.timeout, **open_options(args)}
    with Device.open(args.port, expect=expect, progress=False, **kw) as dev:
        if not args.json:
            print(f"device on {args.port}: capabilities match "
                  f"(params hash {dev.capabilities['params_hash']:016x})", flush=True)
        decode_on_device(dev, args)
    return 0
