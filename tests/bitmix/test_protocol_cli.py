"""`bitmix protocol` prints the wire protocol, and the README's tables are exactly its output."""

from _readme import section

from bitmix.cli import main
from bitmix.cmd_protocol import markdown
from golden.protocol import Command, ErrorCode


def test_protocol_command_prints_every_code(capsys):
    assert main(["protocol"]) == 0
    out = capsys.readouterr().out
    assert out == markdown() + "\n"
    for c in Command:
        assert f"| 0x{c:02x} | {c.name} |" in out
    for e in ErrorCode:
        assert f"| 0x{e:02x} | {e.name} | {e.doc} |" in out
    # a table cell never splits on a '|' inside its text
    rows = [line for line in out.splitlines() if line.startswith("| 0x")]
    assert {line.replace("\\|", "").count("|") for line in rows} == {4, 6}


def test_readme_tables_are_the_generated_ones():
    assert markdown() in section("Wire protocol")
