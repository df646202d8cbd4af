"""PairSum registered as a bitmix design, as a newcomer would add one (tests only)."""

from dataclasses import dataclass

from pair_sum import PairSum

from bitmix.designs import Design, Option, parse_int
from bitmix.errors import BitmixError
from golden.digest import json_digest


@dataclass(frozen=True)
class PairSumParams:
    width: int

    @classmethod
    def make(cls, width) -> "PairSumParams":
        width = parse_int("width", width)
        if not 2 <= width <= 32:
            raise BitmixError(f"width = {width} is out of range [2, 32]")
        return cls(width)

    def describe(self) -> dict:
        return {"width": self.width}

    @property
    def tag(self) -> str:
        return f"pair_sum_W{self.width}_{json_digest(self.describe(), 8)}"


PAIR_SUM = Design(
    name="pair_sum", summary="sums of consecutive pairs (test design)",
    options=(Option("width", "width", 8, "input width"),),
    make_params=lambda v: PairSumParams.make(v["width"]),
    build=lambda p: PairSum(p.width),
    info=lambda p: {"parameters": p.describe()},
    describe=lambda p: f"  width {p.width}")
