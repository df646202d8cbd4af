"""Functional coverage of the GEMV engine's weight stream (cocotb-coverage).

Every weight beat is sampled once per row of its block:
format (``set:format`` of that row) x precision x position in the group (first / middle / last
beat) x stall state (input: the weight source presented the beat late / output: the result sink
was not ready while the beat was computed / none) x row-block boundary (block_first /
block_last / inside).
Impossible combinations are excluded (a block's first beat is its group's first beat, its last
beat its group's last; with one beat per group there is no middle), so 100 % is reachable.
"""

from __future__ import annotations

import itertools

__all__ = ["GemvCoverage"]

STALLS = ("none", "input", "output")
BOUNDARIES = ("block_first", "inside", "block_last")


class GemvCoverage:
    def __init__(self, p, sets: list[int] | None = None, name: str = "gemv"):
        from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

        self.db, self.name = coverage_db, name
        sets = range(len(p.format_sets)) if sets is None else sets
        fmts = [f"{p.format_sets[s].name}:{f.name}" for s in sets for f in p.format_sets[s].formats]
        precs = list(range(p.max_terms + 1))
        B = p.beats_per_group
        pos = ["first"] + (["middle"] if B > 2 else []) + (["last"] if B > 1 else [])
        self.fmt_names = {s: [f"{p.format_sets[s].name}:{f.name}" for f in p.format_sets[s].formats]
                          for s in sets}
        last_pos = pos[-1]
        ign = [c for c in itertools.product(fmts, precs, pos, STALLS, BOUNDARIES)
               if (c[4] == "block_first" and c[2] != "first") or (c[4] == "block_last" and c[2] != last_pos)]
        n = name
        points = [
            CoverPoint(f"{n}.format", xf=lambda f, pr, ps, st, bd: f, bins=fmts),
            CoverPoint(f"{n}.precision", xf=lambda f, pr, ps, st, bd: pr, bins=precs),
            CoverPoint(f"{n}.position", xf=lambda f, pr, ps, st, bd: ps, bins=pos),
            CoverPoint(f"{n}.stall", xf=lambda f, pr, ps, st, bd: st, bins=list(STALLS)),
            CoverPoint(f"{n}.boundary", xf=lambda f, pr, ps, st, bd: bd, bins=list(BOUNDARIES)),
            CoverCross(f"{n}.cross", items=[f"{n}.format", f"{n}.precision", f"{n}.position",
                                            f"{n}.stall", f"{n}.boundary"], ign_bins=ign),
        ]

        def sample(f, pr, ps, st, bd):
            pass

        for pt in reversed(points):
            sample = pt(sample)
        self._sample = sample

    def on_beat(self, meta, stall: str) -> None:
        names = self.fmt_names.get(meta.fmt_set)
        if names is None:
            return
        for f in meta.fmts:
            self._sample(names[f], meta.precision, meta.pos, stall, meta.boundary)

    @property
    def cross(self):
        return self.db[f"{self.name}.cross"]

    def percent(self) -> float:
        return 100.0 * self.cross.coverage / self.cross.size

    def missing(self, limit: int = 10) -> list:
        return [b for b, h in self.cross.detailed_coverage.items() if not h][:limit]

    def report(self, log) -> None:
        c = self.cross
        log(f"functional coverage {self.name}: {c.coverage}/{c.size} cross bins "
            f"({self.percent():.1f} %) of format x precision x position x stall x boundary")
        self.db.report_coverage(log, bins=False, node=self.name)
