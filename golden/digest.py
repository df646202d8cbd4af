"""One way to hash a JSON-able description: format sets, the format table, parameter sets.

Hashes are what a bitstream, a manifest and a checkpoint report, and what the driver compares,
so every hash in the project is made here, from ``json.dumps(..., sort_keys=True)``.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["json_digest"]


def json_digest(obj, chars: int = 16, *, compact: bool = True) -> str:
    """First ``chars`` hex digits of the SHA-256 of ``obj`` as sorted-key JSON.

    ``compact`` drops the blanks after ``,`` and ``:`` (the format hashes use it; parameter-set
    tags were first published without it, and changing it would rename every build folder)."""
    seps = (",", ":") if compact else None
    blob = json.dumps(obj, sort_keys=True, separators=seps).encode()
    return hashlib.sha256(blob).hexdigest()[:chars]
