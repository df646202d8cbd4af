"""`bitmix formats`: print the format tables the hardware is generated from."""

from __future__ import annotations

import json

from golden.formats import FORMAT_SETS, format_table_hash, get_format_set


def register(sub) -> None:
    p = sub.add_parser("formats", help="list number formats, their codes and power-of-two terms")
    p.add_argument("set", nargs="?", help="show one format set in detail (e.g. bitmod4)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.set:
        fs = get_format_set(args.set)
        if args.json:
            print(json.dumps({**fs.describe(), "hash": fs.hash}, indent=1))
            return 0
        print(f"format set {fs.name}: {fs.bits}-bit, {len(fs.formats)} format(s), "
              f"id {fs.id_bits} bit(s), hash {fs.hash}")
        for fid, f in enumerate(fs.formats):
            print(f"  id {fid}: {f.name}  max terms {f.max_terms}")
            for code, (v, ts) in enumerate(zip(f.codebook, f.terms)):
                terms = " ".join(f"{'-' if t.sign else '+'}2^{t.exp}" for t in ts) or "0"
                print(f"    code {code:0{f.bits}b} -> {v:4d} = {terms}")
        return 0
    if args.json:
        print(json.dumps({"hash": format_table_hash(),
                          "sets": {n: s.describe() for n, s in FORMAT_SETS.items()}}))
        return 0
    print(f"{'set':12} {'bits':>4} {'ids':>3} {'terms':>5}  formats")
    for name, fs in FORMAT_SETS.items():
        print(f"{name:12} {fs.bits:>4} {len(fs.formats):>3} {fs.max_terms:>5}  "
              + ", ".join(f.name for f in fs.formats))
    print(f"format table hash: {format_table_hash()}")
    return 0
