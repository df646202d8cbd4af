"""`bitmix elaborate`: Verilog + JSON manifest for one parameter set, linted by Verilator.

    bitmix elaborate --lanes 4 --group-size 32 --format-set bitmod3 --k 256

writes ``build/hw/<tag>/dot_unit.v`` and ``dot_unit.json`` (parameters, format-set hash, derived
widths, port list, cycle model) and runs ``verilator --lint-only -Wall`` with the waivers in
:data:`LINT_WAIVERS`; any other warning fails the command.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["LINT_WAIVERS", "elaborate", "lint", "register", "run", "port_list"]

#: Verilator -Wall warnings we waive, each with the reason. They are all artefacts of how
#: Amaranth/Yosys write Verilog, not of the design.
LINT_WAIVERS = {
    "DECLFILENAME": "Amaranth writes the top and its submodules (`dot_unit.pe`, ...) into one "
                    "file named after the top.",
    "PROCASSINIT": "Amaranth declares registers as `reg x = init` and also assigns them in "
                   "always blocks (its reset value); intended.",
    "UNUSEDSIGNAL": "Amaranth keeps debug-visible wires that nothing reads: copies of every "
                    "submodule port, per-field views of struct payloads (`weights__payload.acts[0]`) "
                    "and `$N` temporaries whose top bit is dropped by a truncating assignment.",
    "WIDTHEXPAND": "Yosys' Verilog backend relies on Verilog's context-determined operand "
                   "extension (e.g. `psum + tree`); Amaranth's width rules make these exact.",
}

DEFAULT_TOP = "dot_unit"


def _field_info(shape) -> dict | None:
    """Offsets of a struct payload's fields (what a testbench needs to pack a beat)."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if not isinstance(shape, data.StructLayout):
        return None
    fields = {}
    for name, fld in shape:
        info = {"offset": fld.offset, "width": fld.width}
        if isinstance(fld.shape, data.ArrayLayout):
            elem = Shape.cast(fld.shape.elem_shape)
            info.update(count=fld.shape.length, elem_width=elem.width, signed=elem.signed)
        else:
            info["signed"] = Shape.cast(fld.shape).signed
        fields[name] = info
    return fields


def port_list(component) -> list[dict]:
    """Ports of the elaborated top, as Verilog sees them (plus clk/rst)."""
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1,
              "note": "synchronous, active high"}]
    for path, member, value in component.signature.flatten(component):
        shape = member.shape
        entry = {"name": "__".join(str(p) for p in path),
                 "direction": "input" if member.flow == wiring.In else "output",
                 "width": Shape.cast(shape).width,
                 "signed": Shape.cast(shape).signed}
        fields = _field_info(shape)
        if fields:
            entry["fields"] = fields
        ports.append(entry)
    return ports


CYCLE_MODEL = (
    "A group with format f costs T * G/L cycles, T = terms(f) limited by max_terms (0 = full). "
    "Beats, groups and rows follow each other with no bubble when the streams flow, and the "
    "dequantizer overlaps the next group, so back-to-back results are sum_g T_g*G/L cycles apart. "
    "The result of a row is valid latency_constant (= 2 PE pipeline registers + dq_steps) cycles after its last compute cycle, "
    "i.e. sum_g T_g*G/L + latency_constant cycles after its first beat is presented.")


def elaborate(params, out_dir: str | Path, *, name: str = DEFAULT_TOP, run_lint: bool = True) -> dict:
    """Write ``<out_dir>/<name>.v`` and ``<name>.json``; return the manifest (with paths)."""
    from amaranth.back import verilog

    from bitmix import __version__
    from hw.dot_unit import DotProductUnit

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dut = DotProductUnit.from_params(params)
    text = verilog.convert(dut, name=name, emit_src=False)
    vpath = out / f"{name}.v"
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    manifest = {
        "generator": f"bitmix {__version__}",
        "top": name,
        "verilog": vpath.name,
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "parameters": params.describe(),
        "format_set": {"name": params.fs.name, "hash": params.fs.hash,
                       "formats": [f.name for f in params.fs.formats],
                       "terms": params.format_terms()},
        "derived": params.derived(),
        "ports": port_list(dut),
        "cycle_model": {"description": CYCLE_MODEL,
                        "cycles_per_group": {f.name: t * params.beats_per_group for f, t in
                                             zip(params.fs.formats, params.format_terms())},
                        "latency_constant": params.latency_constant},
        "lint": {"waivers": LINT_WAIVERS},
    }
    if run_lint:
        manifest["lint"]["command"] = lint(vpath, name)
    mpath = out / f"{name}.json"
    new = json.dumps(manifest, indent=1) + "\n"
    if not mpath.exists() or mpath.read_text() != new:
        mpath.write_text(new)
    manifest["paths"] = {"verilog": str(vpath), "manifest": str(mpath), "dir": str(out)}
    return manifest


def lint(vpath: str | Path, top: str = DEFAULT_TOP) -> str:
    """Run ``verilator --lint-only -Wall`` with the documented waivers; BitmixError on failure."""
    from bitmix.tools import ensure_verilator

    cmd = [ensure_verilator(), "--lint-only", "-Wall",
           *[f"-Wno-{w}" for w in LINT_WAIVERS], "--top-module", top, str(vpath)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if ln.startswith("%")), res.stderr.strip())
        log = Path(vpath).with_suffix(".lint.log")
        log.write_text(res.stderr)
        raise BitmixError(f"verilator lint failed for {vpath}: {first} (full log: {log})")
    return " ".join(["verilator", *cmd[1:]])



def register(sub) -> None:
    p = sub.add_parser("elaborate", help="write Verilog + JSON manifest of the dot-product unit",
                       description="Elaborate the bit-serial dot-product unit for one parameter "
                                   "set, lint it with Verilator and write a JSON manifest.")
    p.add_argument("--lanes", default="4", help="PE lanes L (default 4)")
    p.add_argument("--group-size", default="128", help="group size G, a multiple of L (default 128)")
    p.add_argument("--act-bits", default="8", help="activation bits A (default 8)")
    p.add_argument("--scale-bits", default="8", help="group scale bits S (default 8)")
    p.add_argument("--format-set", default="bitmod4", help="format set from golden (default bitmod4)")
    p.add_argument("--k", default="4096",
                   help="longest row K the accumulator is sized for; G must divide it (default 4096)")
    p.add_argument("--out", default=None, help="output directory (default build/hw/<tag>)")
    p.add_argument("--name", default=DEFAULT_TOP, help=f"top module name (default {DEFAULT_TOP})")
    p.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    p.set_defaults(func=run)


def _arg_int(field: str, text: str) -> int:
    try:
        return int(str(text), 0)
    except ValueError:
        raise BitmixError(f"{field} must be an integer, got {text!r}") from None


def run(args) -> int:
    from hw.params import DotParams

    params = DotParams.for_row_length(
        k=_arg_int("k", args.k), group_size=_arg_int("group_size", args.group_size),
        lanes=_arg_int("lanes", args.lanes), act_bits=_arg_int("act_bits", args.act_bits),
        scale_bits=_arg_int("scale_bits", args.scale_bits), format_set=args.format_set)
    if not args.name.isidentifier():
        raise BitmixError(f"name must be a Verilog identifier, got {args.name!r}")
    out = Path(args.out) if args.out else Path("build") / "hw" / params.tag
    man = elaborate(params, out, name=args.name, run_lint=not args.no_lint)
    d = man["derived"]
    print(f"wrote {man['paths']['verilog']} and {man['paths']['manifest']}")
    print(f"  format set {params.fs.name} (hash {params.fs.hash}), L={params.lanes} "
          f"G={params.group_size} A={params.act_bits} S={params.scale_bits} "
          f"max_groups={params.max_groups}")
    print(f"  psum {d['psum_bits']} bits, row {d['row_bits']} bits, dequant {d['dq_bits_per_cycle']} "
          f"bit(s)/cycle x {d['dq_steps']} cycles, latency constant {d['latency_constant']}")
    print("  lint: " + ("skipped" if args.no_lint else
                        "passed (waived: " + ", ".join(LINT_WAIVERS) + ")"))
    return 0
