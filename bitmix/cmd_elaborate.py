"""`bitmix elaborate`: Verilog + JSON manifest of one design for one parameter set.

    bitmix elaborate --lanes 4 --group-size 32 --format-set bitmod3 --k 256
    bitmix elaborate --design gemv ...

writes ``build/hw/<tag>/<design>.v`` and ``<design>.json`` and lints the Verilog with Verilator
(:func:`bitmix.elaborate.elaborate`). Each design's options come from :mod:`bitmix.designs`; an
option the chosen design does not take is an error, not silently ignored.
"""

from __future__ import annotations

from pathlib import Path

from bitmix.designs import DESIGNS, get_design
from bitmix.elaborate import LINT_WAIVERS, elaborate
from bitmix.errors import BitmixError

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("elaborate", help="write Verilog + JSON manifest of a design (default: the "
                                         "dot-product unit)",
                       description="Elaborate a design for one parameter set, lint it with "
                                   "Verilator and write a JSON manifest. Designs: "
                                   + "; ".join(f"{d.name}: {d.summary}" for d in DESIGNS.values()))
    p.add_argument("--design", default="dot_unit", choices=sorted(DESIGNS),
                   help="which design (default dot_unit)")
    seen = {}
    for d in DESIGNS.values():
        for o in d.options:
            if o.dest in seen:
                continue
            seen[o.dest] = o
            users = [x.name for x in DESIGNS.values() if any(q.dest == o.dest for q in x.options)]
            p.add_argument(f"--{o.flag}", dest=o.dest, default=None,
                           help=o.help + ("" if len(users) == len(DESIGNS)
                                          else f" [{', '.join(users)}]"))
    p.add_argument("--out", default=None, help="output directory (default build/hw/<tag>)")
    p.add_argument("--name", default=None, help="top module name (default: the design's name)")
    p.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    p.set_defaults(func=run)


def run(args) -> int:
    design = get_design(args.design)
    mine = {o.dest for o in design.options}
    for d in DESIGNS.values():
        for o in d.options:
            if o.dest not in mine and getattr(args, o.dest, None) is not None:
                raise BitmixError(f"--{o.flag} is not an option of design {design.name!r}")
    values = {o.dest: (getattr(args, o.dest) if getattr(args, o.dest) is not None else o.default)
              for o in design.options}
    params = design.make_params(values)
    name = args.name or design.name
    out = Path(args.out) if args.out else Path("build") / "hw" / params.tag
    man = elaborate(design.build(params), out, name=name, info=design.info(params),
                    run_lint=not args.no_lint)
    print(f"wrote {man['paths']['verilog']} and {man['paths']['manifest']}")
    print(design.describe(params))
    print("  lint: " + ("skipped" if args.no_lint else
                        "passed (waived: " + ", ".join(LINT_WAIVERS) + ")"))
    return 0
