"""`bitmix protocol`: print the host-link wire protocol (golden/protocol.py) as markdown tables.

The README's "Wire protocol" tables are this command's output, checked by a test, so the
documentation cannot drift from the definition.
"""

from __future__ import annotations

from golden.protocol import (
    CRC_RESIDUE,
    DELIMITER,
    MAX_ENCODED,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    RESPONSE_FLAG,
    protocol_table,
)


def register(sub) -> None:
    p = sub.add_parser("protocol", help="print the host-link wire protocol (frame, commands, errors)")
    p.set_defaults(func=run)


def _table(rows: list[dict]) -> list[str]:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return lines + ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]


def markdown() -> str:
    """The whole protocol: constants, then one table per ``protocol_table()`` entry."""
    lines = [f"Protocol version {PROTOCOL_VERSION}. Frame = COBS(header | payload | CRC-32C) + "
             f"`0x{DELIMITER:02x}`; payload ≤ {MAX_PAYLOAD} bytes, ≤ {MAX_ENCODED + 1} bytes on the "
             f"wire; little-endian fields; CRC over a whole valid frame = `0x{CRC_RESIDUE:08X}`. "
             f"A response has command code `request | 0x{RESPONSE_FLAG:02x}` and starts with an "
             "error code (`OK` = ACK)."]
    for title, rows in protocol_table():
        lines += ["", f"**{title}**", "", *_table(rows)]
    return "\n".join(lines)


def run(args) -> int:
    print(markdown())
    return 0
