"""`bitmix deploy --board B [--bitstream F] [--flash]`: program a board with openFPGALoader.

Without ``--bitstream`` the newest bitstream ``bitmix build --board B`` wrote under
``build/<board>/`` whose report says it fits and meets timing is used. Without the OS libraries
openFPGALoader needs, or without the board attached, it stops with one line saying which and
what to do (:mod:`fpga.deploy`).
"""

from __future__ import annotations

from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["register", "run", "latest_bitstream"]


def register(sub) -> None:
    from fpga.boards import BOARDS

    modes = "; ".join(f"{b.name}: " + " and ".join(m for m, ok in (("SRAM", b.sram),
                                                                    ("flash", b.flash)) if ok)
                      for b in BOARDS.values())
    p = sub.add_parser("deploy", help="program a board with openFPGALoader (SRAM or --flash)",
                       description=__doc__.splitlines()[0] + f" Modes: {modes}.")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--bitstream", default=None,
                   help="bitstream file (default: the newest passing build under build/<board>/)")
    p.add_argument("--flash", action="store_true",
                   help="write the configuration flash (persistent) instead of loading SRAM")
    p.set_defaults(func=run)


def latest_bitstream(board: str, root: str | Path = "build") -> Path:
    """The bitstream of the newest build of ``board`` under ``root`` whose report says ``ok``
    (a build that missed timing or did not fit is never picked)."""
    import json

    found = []
    for rep in (Path(root) / board).glob("*/report.json"):
        try:
            r = json.loads(rep.read_text())
        except (OSError, ValueError):
            continue
        bit = Path(r.get("bitstream") or "")
        if r.get("status") == "ok" and bit.is_file():
            found.append((rep.stat().st_mtime, bit))
    if not found:
        raise BitmixError(f"no finished build under {Path(root) / board} that met timing: run "
                          f"`bitmix build --board {board}` first, or pass --bitstream")
    return max(found)[1]


def run(args) -> int:
    from fpga.deploy import deploy

    bit = Path(args.bitstream) if args.bitstream else latest_bitstream(args.board)
    out = deploy(args.board, bit, flash=args.flash)
    print(out.rstrip())
    print(f"programmed {args.board} ({'flash' if args.flash else 'SRAM'}) with {bit}")
    return 0
