"""Build the dot-product unit under Verilator and run the cocotb tests (``cocotb_tools.runner``).

One build directory per parameter set: ``build/sim/<tag>/`` (``<tag>`` names the parameters and
ends in their hash). The model is always compiled with ``--trace``; tests run without dumping,
and if any fails they are re-run with the same seed and waves on, leaving
``build/sim/<tag>/waves/dump.vcd`` — the path is in the failure message.

Set ``BITMIX_SEED`` to reproduce a run (the seed is printed and written into the config).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from hw.params import DotParams

__all__ = ["build_root", "build_dot_unit", "run_dot_unit", "SimFailure", "SimResult"]

TOP = "dot_unit"
#: The simulations are short (~10k cycles): compile the model and runtime unoptimised, which
#: roughly halves a cold build.
CFLAGS = ["-CFLAGS", "-O0"]
TEST_MODULE = "verif.tb_dot_unit"


def build_root() -> Path:
    env = os.environ.get("BITMIX_BUILD_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "build"


class SimFailure(AssertionError):
    pass


@dataclass
class SimResult:
    build_dir: Path
    results_xml: Path
    seed: int
    tests: int


@contextlib.contextmanager
def _locked(bdir: Path):
    """Serialise runs that share a build directory (e.g. pytest-xdist workers)."""
    bdir.mkdir(parents=True, exist_ok=True)
    with open(bdir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_dot_unit(p: DotParams):
    """Elaborate (+ lint) and compile; returns (runner, build_dir, manifest)."""
    from cocotb_tools.runner import get_runner

    from bitmix.tools import ensure_verilator
    from hw.elaborate import LINT_WAIVERS, elaborate

    ensure_verilator()
    bdir = build_root() / "sim" / p.tag
    man = elaborate(p, bdir / "rtl", name=TOP)
    runner = get_runner("verilator")
    runner.build(sources=[man["paths"]["verilog"]], hdl_toplevel=TOP, build_dir=bdir / "obj",
                 waves=True, timescale=("1ns", "1ps"),
                 build_args=[*(f"-Wno-{w}" for w in LINT_WAIVERS), *CFLAGS])
    return runner, bdir, man


def _failures(xml: Path) -> list[str]:
    out = []
    for tc in ET.parse(xml).iter("testcase"):
        for f in tc.findall("failure") + tc.findall("error"):
            out.append(f"{tc.get('name')}: {(f.get('message') or f.text or '').strip()}")
    return out


def _count(xml: Path) -> int:
    return sum(1 for _ in ET.parse(xml).iter("testcase"))


def run_dot_unit(p: DotParams, *, testcase: str | list[str] | None = None, seed: int | None = None,
                 idle: float = 0.3, backpressure: float = 0.3, rows: int = 10,
                 inject_mismatch: bool = False) -> SimResult:
    """Run the cocotb tests for ``p``; raise :class:`SimFailure` (with the VCD path) on failure.

    ``idle``/``backpressure``: probability that a source idles / the result sink stalls in a
    cycle. ``inject_mismatch`` corrupts one expected value (self-test of the failure path)."""
    if seed is None:
        seed = int(os.environ.get("BITMIX_SEED", random.randrange(1 << 31)))
    with _locked(build_root() / "sim" / p.tag):
        return _run_locked(p, testcase, seed, idle, backpressure, rows, inject_mismatch)


def _run_locked(p, testcase, seed, idle, backpressure, rows, inject_mismatch) -> SimResult:
    runner, bdir, man = build_dot_unit(p)
    cfg = {"params": p.describe(), "ports": man["ports"], "seed": seed, "idle": idle,
           "backpressure": backpressure, "rows": rows, "inject_mismatch": inject_mismatch}
    cfg_path = bdir / f"tb_config_{seed}.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    print(f"[bitmix] {p.tag}: seed {seed} (reproduce with BITMIX_SEED={seed}); build dir {bdir}",
          file=sys.stderr)

    def attempt(waves: bool) -> Path:
        test_dir = bdir / ("waves" if waves else "run")
        test_dir.mkdir(parents=True, exist_ok=True)
        xml = test_dir / "results.xml"
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=TOP, testcase=testcase,
                        build_dir=bdir / "obj", test_dir=test_dir, waves=waves,
                        extra_env={"BITMIX_TB_CONFIG": str(cfg_path),
                                   # rewrite asserts in the testbench only, not in torch (5 s)
                                   "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py"}, results_xml=str(xml))
        except SystemExit:      # the runner exits when a test fails under pytest
            pass
        return xml

    xml = attempt(False)
    fails = _failures(xml) if xml.exists() else ["simulator produced no results file"]
    if not fails:
        return SimResult(bdir, xml, seed, _count(xml))
    vcd = bdir / "waves" / "dump.vcd"
    vcd.unlink(missing_ok=True)
    attempt(True)
    raise SimFailure(
        f"{p.tag}: {len(fails)} cocotb test(s) failed (seed {seed}; rerun with BITMIX_SEED={seed}).\n"
        + "\n".join(f"  - {f}" for f in fails)
        + f"\nwaveform: {vcd}{'' if vcd.exists() else ' (NOT written)'}\nresults: {xml}"
        + f"\nconfig: {cfg_path}")
