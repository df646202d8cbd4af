"""Parsers of Yosys and nextpnr logs: cell counts, device utilisation, Fmax, "does not fit"."""

from __future__ import annotations

import re

from bitmix.errors import BitmixError
from fpga.targets import CELL_CLASSES

__all__ = ["parse_yosys_stat", "classify_cells", "parse_nextpnr_log", "nofit_from_log"]


def parse_yosys_stat(text: str) -> dict:
    """Cell counts of the last ``stat`` in a Yosys log (the design hierarchy total if present).

    Returns ``{cell_type: count}`` for every ``<count> <type>`` line of that block.
    """
    start = text.rfind("Printing statistics")
    if start < 0:
        raise BitmixError("no 'Printing statistics' section in the Yosys log")
    block = text[start:]
    hier = block.find("=== design hierarchy ===")
    if hier >= 0:
        block = block[hier:]
    end = re.search(r"^\d+\.\d+\. Executing", block, re.M)
    if end:
        block = block[:end.start()]
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+([A-Za-z_$][\w$]*)\s*$", block, re.M):
        cells[m.group(2)] = int(m.group(1))     # later lines (the totals) win
    return cells


def classify_cells(cells: dict, family: str) -> dict:
    cls = CELL_CLASSES[family]
    return {
        "luts": sum(cells.get(c, 0) for c in cls["lut"]),
        "ffs": sum(n for c, n in cells.items() if c.startswith(cls["ff_prefix"])),
        "carries": sum(cells.get(c, 0) for c in cls["carry"]),
        "bram": sum(cells.get(c, 0) for c in cls["bram"]),
        "dsp": sum(cells.get(c, 0) for c in cls["dsp"]),
    }


_UTIL = re.compile(r"^Info:\s+([A-Z][A-Z0-9_]*):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log(text: str) -> dict:
    """Last ``Device utilisation`` block and last (post-route) ``Max frequency`` of a nextpnr log.

    Returns ``{"utilisation": {bel: {"used", "available"}}, "fmax_mhz": {clock: MHz},
    "constraint_mhz": {clock: MHz}, "timing": {clock: "PASS"|"FAIL"}}``.
    """
    util: dict = {}
    start = text.rfind("Device utilisation:")
    if start >= 0:
        block = text[start:]
        for m in _UTIL.finditer(block):
            if m.group(1) in util:
                break
            util[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    fmax, cons, status = {}, {}, {}
    for m in _FMAX.finditer(text):       # later lines (post-route) overwrite earlier ones
        fmax[m.group(1)] = float(m.group(2))
        status[m.group(1)] = m.group(3)
        cons[m.group(1)] = float(m.group(4))
    return {"utilisation": util, "fmax_mhz": fmax, "constraint_mhz": cons, "timing": status}


def nofit_from_log(text: str):
    """``(resource, used, available)`` if a nextpnr log says the design does not fit, else None.

    nextpnr prints the ``Device utilisation`` block (used may exceed available) before it fails
    with ``Unable to place cell ..., no BELs remaining to implement cell type 'ICESTORM_LC'``.
    """
    over = [(k, v["used"], v["available"]) for k, v in parse_nextpnr_log(text)["utilisation"].items()
            if v["used"] > v["available"]]
    if over:
        return over[0]
    m = re.search(r"no BELs remaining to implement cell type '(\w+)'", text)
    if m:
        return m.group(1), -1, -1
    return None


# ------------------------------------------------------------------------------------- wrapper
