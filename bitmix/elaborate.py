"""Elaborate any Amaranth component: Verilog + JSON manifest, linted by Verilator.

    from bitmix.elaborate import elaborate
    man = elaborate(component, "build/hw/x", name="my_top", info={"parameters": {...}})

writes ``<out>/<name>.v`` and ``<name>.json`` (generator, top, Verilog hash, every port with its
payload field offsets, plus whatever ``info`` the design adds: parameters, derived widths, cycle
model, packer layout) and runs ``verilator --lint-only -Wall`` with the waivers in
:data:`LINT_WAIVERS`; any other warning raises :class:`BitmixError`. ``bitmix elaborate``
(:mod:`bitmix.cmd_elaborate`) calls it for the designs in :mod:`bitmix.designs`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["LINT_WAIVERS", "elaborate", "lint", "port_list", "port_name"]

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


def port_name(path) -> str:
    """Verilog name of a flattened signature member (``("weights", "payload")`` ->
    ``weights__payload``), as Amaranth's Verilog backend spells it."""
    return "__".join(str(p) for p in path)


def port_list(component) -> list[dict]:
    """Ports of the elaborated top, as Verilog sees them (plus clk/rst)."""
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1,
              "note": "synchronous, active high"}]
    for path, member, _value in component.signature.flatten(component):
        shape = member.shape
        entry = {"name": port_name(path),
                 "direction": "input" if member.flow == wiring.In else "output",
                 "width": Shape.cast(shape).width,
                 "signed": Shape.cast(shape).signed}
        fields = _field_info(shape)
        if fields:
            entry["fields"] = fields
        ports.append(entry)
    return ports


def elaborate(component, out_dir: str | Path, *, name: str, info: dict | None = None,
              run_lint: bool = True) -> dict:
    """Write ``<out_dir>/<name>.v`` and ``<name>.json``; return the manifest (with ``paths``).

    ``info`` (JSON-able) is merged into the manifest after the generic entries. Files are only
    rewritten when their content changes, so a simulator build that depends on them is reused.
    """
    from amaranth.back import verilog

    from bitmix import __version__

    if not name.isidentifier():
        raise BitmixError(f"name must be a Verilog identifier, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    vpath = out / f"{name}.v"
    _write_if_changed(vpath, text)
    manifest = {
        "generator": f"bitmix {__version__}",
        "top": name,
        "verilog": vpath.name,
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        **(info or {}),
        "ports": port_list(component),
        "lint": {"waivers": LINT_WAIVERS},
    }
    if run_lint:
        manifest["lint"]["command"] = lint(vpath, name)
    mpath = out / f"{name}.json"
    _write_if_changed(mpath, json.dumps(manifest, indent=1) + "\n")
    manifest["paths"] = {"verilog": str(vpath), "manifest": str(mpath), "dir": str(out)}
    return manifest


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def lint(vpath: str | Path, top: str) -> str:
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
