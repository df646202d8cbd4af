"""Range-checked argparse ``type=`` converters, one definition for every command.

``p.add_argument("--window", type=int_in_range("--window", 2), default=256)`` converts and checks
the value while the command line is parsed. A bad value raises :class:`BitmixError` (not
argparse's ``ArgumentTypeError``), so ``bitmix`` prints it as its usual one-line
``bitmix: error: --window must be at least 2, got 1`` and exits with status 2.
Defaults are not passed through ``type`` when they are not strings: keep them in range.
"""

from __future__ import annotations

from collections.abc import Callable

from bitmix.errors import BitmixError

__all__ = ["int_in_range", "float_in_range", "check_range"]


def check_range(option: str, value, lo=None, hi=None):
    """``value`` if ``lo <= value <= hi`` (either bound may be None), else a BitmixError naming ``option``."""
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise BitmixError(f"{option} must be between {lo} and {hi}, got {value}")
    if lo is not None and value < lo:
        raise BitmixError(f"{option} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise BitmixError(f"{option} must be at most {hi}, got {value}")
    return value


def _parse_int(option: str, text) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = str(text).strip()
    for base in (10, 0):             # decimal (also "08"), then 0x / 0o / 0b prefixes
        try:
            return int(s, base)
        except ValueError:
            pass
    raise BitmixError(f"{option} must be an integer, got {text!r}")


def _parse_float(option: str, text) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise BitmixError(f"{option} must be a number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise BitmixError(f"{option} must be a finite number, got {text!r}")
    return v


def int_in_range(option: str, lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """argparse ``type=``: an integer in ``[lo, hi]`` (None: unbounded), errors naming ``option``."""
    def convert(text) -> int:
        return check_range(option, _parse_int(option, text), lo, hi)
    convert.__name__ = f"int_in_range({option})"      # what argparse's own messages would show
    return convert


def float_in_range(option: str, lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """argparse ``type=``: a finite float in ``[lo, hi]`` (None: unbounded), errors naming ``option``."""
    def convert(text) -> float:
        return check_range(option, _parse_float(option, text), lo, hi)
    convert.__name__ = f"float_in_range({option})"
    return convert
