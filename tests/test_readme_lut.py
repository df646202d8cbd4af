"""The README's LUT-path section shows what the code produces: the stream tables are
`golden.gemv_layout.doc_table` of the R = 8 layouts, and the elaborate lines are the design's."""

import re

from _readme import section

from bitmix.designs import DESIGNS
from golden.gemv_layout import doc_table


def _default_params():
    d = DESIGNS["lut_unit"]
    return d, d.make_params({o.dest: o.default for o in d.options})


def test_stream_tables_are_generated():
    _, p = _default_params()
    text = section("Shift-add LUT path")
    for lay in (p.layout.cmd, p.layout.keys, p.layout.scales):
        assert doc_table(lay) in text, lay.name


def test_elaborate_lines_are_the_designs():
    d, p = _default_params()
    text = section("Shift-add LUT path")
    block = re.search(r"\$ bitmix elaborate --design lut_unit.*?\n(.*?)\n  lint", text, re.S).group(1)
    assert block.splitlines()[1:] == d.describe(p).splitlines()


def test_engine_path_tables_are_generated():
    """The engine's path-1 beat and its cmd (with `planes`), for the command the README names."""
    d = DESIGNS["gemv"]
    v = {o.dest: o.default for o in d.options}
    v.update(rows=8, lanes=8, lut_planes=4, lut_table_inputs=4)
    p = d.make_params(v)
    text = section("Shift-add LUT path")
    assert "--design gemv --rows 8 --lanes 8 --lut-planes 4\n--lut-table-inputs 4" in text
    for lay in (p.lut_layout.weights, p.layout.cmd):
        assert doc_table(lay) in text, lay.name
