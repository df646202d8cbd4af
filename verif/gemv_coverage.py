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

__all__ = ["GemvCoverage", "LutCoverage"]

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
        names = self.fmt_names.get(getattr(meta, "fmt_set", None))   # path-1 beats: LutCoverage
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


class LutCoverage:
    """Functional coverage of the engine's LUT path (``cmd.path`` = 1), one sample per beat:
    BCQ layout x (q, p) x word position in its row (first / group start / in group / last) x
    stall (as :class:`GemvCoverage`); plus both table halves (the block's first row reads a
    direct or a mirrored entry) per layout. The block layout starts a scale group at every
    word, so its "in group" bins are excluded."""

    POSITIONS = ("first", "group start", "in group", "last")

    def __init__(self, qp: list[tuple[int, int]], name: str = "gemv_lut"):
        from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

        self.db, self.name, n = coverage_db, name, name
        layouts = ["row", "block"]
        points = [
            CoverPoint(f"{n}.layout", xf=lambda ly, qp, ps, st, hf: ly, bins=layouts),
            CoverPoint(f"{n}.qp", xf=lambda ly, qp, ps, st, hf: qp, bins=list(qp)),
            CoverPoint(f"{n}.position", xf=lambda ly, qp, ps, st, hf: ps, bins=list(self.POSITIONS)),
            CoverPoint(f"{n}.stall", xf=lambda ly, qp, ps, st, hf: st, bins=list(STALLS)),
            CoverPoint(f"{n}.half", xf=lambda ly, qp, ps, st, hf: (ly, hf),
                       bins=[(ly, hf) for ly in layouts for hf in ("direct", "mirrored")]),
            CoverCross(f"{n}.cross", items=[f"{n}.layout", f"{n}.qp", f"{n}.position", f"{n}.stall"],
                       ign_bins=[("block", None, "in group", None)]),
        ]

        def sample(ly, qp, ps, st, hf):
            pass

        for pt in reversed(points):
            sample = pt(sample)
        self._sample = sample

    def on_beat(self, meta, stall: str) -> None:
        if hasattr(meta, "layout"):
            self._sample(meta.layout, (meta.q, meta.p), meta.position, stall,
                         "mirrored" if meta.mirrored else "direct")

    @property
    def cross(self):
        return self.db[f"{self.name}.cross"]

    def percent(self) -> float:
        half = self.db[f"{self.name}.half"]
        return 100.0 * (self.cross.coverage + half.coverage) / (self.cross.size + half.size)

    def missing(self, limit: int = 10) -> list:
        out = [b for b, h in self.cross.detailed_coverage.items() if not h]
        out += [b for b, h in self.db[f"{self.name}.half"].detailed_coverage.items() if not h]
        return out[:limit]

    def missing_for(self, layout: str, q: int, p: int) -> bool:
        return any(not h for b, h in self.cross.detailed_coverage.items()
                   if b[0] == layout and b[1] == (q, p))

    def report(self, log) -> None:
        c, half = self.cross, self.db[f"{self.name}.half"]
        log(f"functional coverage {self.name}: {c.coverage}/{c.size} cross bins of layout x (q, p) "
            f"x position x stall, {half.coverage}/{half.size} table-half bins ({self.percent():.1f} %)")
