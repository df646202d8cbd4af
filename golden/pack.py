"""The dot-product unit's input streams: payload layouts and the packer that fills them.

One row of K quantized weights (codes, per-group format ids and scales ``u``) and its K integer
activations become

* ``weights`` beats: L codes, then L activations (LSB first), in row order;
* ``groups`` descriptors: ``{fmt_id, u, last}``, one per group, ``last`` on the row's final one.

The layouts here are the single definition: ``hw.interfaces`` turns them into Amaranth
``StructLayout``\\ s, the testbenches and (later) the host driver pack with them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bitmix.errors import BitmixError
from golden.bitfields import Field, Layout
from golden.formats import FormatSet

__all__ = ["id_field_bits", "weight_beat_layout", "group_layout", "pack_beats", "pack_groups",
           "unpack_beats", "unpack_groups"]


def id_field_bits(fs: FormatSet) -> int:
    """Width of a format-id field: one bit even for a single-format set."""
    return max(1, fs.id_bits)


def weight_beat_layout(lanes: int, fs: FormatSet, act_bits: int) -> Layout:
    return Layout("weights", (
        Field("codes", fs.bits, lanes, doc=f"L codes of format-set {fs.name!r}, lane 0 first"),
        Field("acts", act_bits, lanes, signed=True, doc="the L activations of those weights"),
    ))


def group_layout(fs: FormatSet, scale_bits: int) -> Layout:
    return Layout("groups", (
        Field("fmt_id", id_field_bits(fs), doc="format of this group (index into the set)"),
        Field("u", scale_bits, doc="unsigned integer group scale"),
        Field("last", 1, doc="1 on the row's final group"),
    ))


def pack_beats(layout: Layout, codes: Sequence[int], acts: Sequence[int]) -> list[int]:
    """One ``weights`` payload per L consecutive weights (K must be a multiple of L)."""
    lanes = layout.field("codes").count
    if len(codes) != len(acts) or len(codes) % lanes:
        raise BitmixError(f"row of {len(codes)} codes and {len(acts)} activations does not split "
                          f"into beats of {lanes} lanes")
    return [layout.pack(codes=codes[s:s + lanes], acts=acts[s:s + lanes])
            for s in range(0, len(codes), lanes)]


def pack_groups(layout: Layout, fmt_ids: Sequence[int], u: Sequence[int]) -> list[int]:
    """One ``groups`` payload per group, ``last`` set on the final one."""
    if len(fmt_ids) != len(u) or not fmt_ids:
        raise BitmixError(f"{len(fmt_ids)} format ids for {len(u)} scales (need one of each per group)")
    n = len(fmt_ids)
    return [layout.pack(fmt_id=f, u=s, last=int(g == n - 1)) for g, (f, s) in enumerate(zip(fmt_ids, u))]


def unpack_beats(layout: Layout, beats: Sequence[int]) -> tuple[list[int], list[int]]:
    codes, acts = [], []
    for b in beats:
        d = layout.unpack(b)
        codes += d["codes"]
        acts += d["acts"]
    return codes, acts


def unpack_groups(layout: Layout, words: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    d = [layout.unpack(w) for w in words]
    return [x["fmt_id"] for x in d], [x["u"] for x in d], [x["last"] for x in d]
