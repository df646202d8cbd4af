"""The README, cut at its `## ` headings, so each doc test reads only its own section."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def section(heading_start: str) -> str:
    """Text of the `## ` section whose heading starts with ``heading_start`` (up to the next one)."""
    text = README.read_text()
    start = text.index("\n## " + heading_start)
    end = text.find("\n## ", start + 4)
    return text[start:end if end != -1 else None]
