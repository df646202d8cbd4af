"""`bitmix deploy --board B [--bitstream F] [--flash]`: program a board with openFPGALoader.

Without ``--bitstream`` the newest bitstream ``bitmix build --board B`` wrote under
``build/<board>/`` is used. Without the OS libraries openFPGALoader needs, or without the board
attached, it stops with one line saying which and what to do (:mod:`fpga.deploy`).
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
                   help="bitstream file (default: the newest under build/<board>/)")
    p.add_argument("--flash", action="store_true",
                   help="write the configuration flash (persistent) instead of loading SRAM")
    p.set_defaults(func=run)


def latest_bitstream(board: str, root: str | Path = "build") -> Path:
    """The newest ``top.bin``/``top.bit`` of a finished build of ``board`` under ``root``."""
    found = [p for pat in ("*/top.bin", "*/top.bit") for p in (Path(root) / board).glob(pat)]
    if not found:
        raise BitmixError(f"no bitstream under {Path(root) / board}: run `bitmix build --board "
                          f"{board}` first, or pass --bitstream")
    return max(found, key=lambda p: p.stat().st_mtime)


def run(args) -> int:
    from fpga.deploy import deploy

    bit = Path(args.bitstream) if args.bitstream else latest_bitstream(args.board)
    out = deploy(args.board, bit, flash=args.flash)
    print(out.rstrip())
    print(f"programmed {args.board} ({'flash' if args.flash else 'SRAM'}) with {bit}")
    return 0
