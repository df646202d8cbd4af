"""UART generator parameters (pure Python, no Amaranth): what the host driver and the top's
parameter class (``fpga.top_params``) validate without elaborating anything; the gateware is
:mod:`hw.uart`."""

from __future__ import annotations

from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["UARTParams", "MAX_BAUD_ERROR", "MIN_DIVISOR"]

#: Largest relative difference between the requested and the generated baud rate. A receiver
#: samples mid-bit, so over the 9.5 bit times to the stop bit's centre the two ends together may
#: drift at most half a bit: 2 % at each end leaves margin for the other end's clock.
MAX_BAUD_ERROR = 0.02
#: Fewest clock cycles per bit: the receiver needs a half-bit count of at least 2.
MIN_DIVISOR = 4


@dataclass(frozen=True)
class UARTParams:
    """Validated UART parameters: ``divisor`` clock cycles per bit."""

    divisor: int

    @classmethod
    def make(cls, *, clk_hz: float, baud: int) -> UARTParams:
        if not clk_hz > 0:
            raise BitmixError(f"clk_hz must be positive, got {clk_hz!r}")
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise BitmixError(f"baud must be a positive integer, got {baud!r}")
        divisor = round(clk_hz / baud)
        if divisor < MIN_DIVISOR:
            raise BitmixError(f"baud = {baud} is too fast for a {clk_hz / 1e6:g} MHz clock: "
                              f"{clk_hz / baud:.2f} cycles per bit, need >= {MIN_DIVISOR}")
        error = abs(clk_hz / divisor - baud) / baud
        if error > MAX_BAUD_ERROR:
            raise BitmixError(f"baud = {baud} from a {clk_hz / 1e6:g} MHz clock is off by "
                              f"{100 * error:.1f} % (divisor {divisor}); at most "
                              f"{100 * MAX_BAUD_ERROR:g} % works")
        return cls(divisor)

    @property
    def tag(self) -> str:
        return f"uart_div{self.divisor}"

    @classmethod
    def from_divisor(cls, divisor: int) -> UARTParams:
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise BitmixError(f"divisor must be an integer >= {MIN_DIVISOR}, got {divisor!r}")
        return cls(divisor)
