"""`bitmix quantize`: output folder, manifest, round trip, eval, errors, atomicity."""

import json

import pytest
import torch

from bitmix.cli import main
from golden.checkpoint import load_model, save_model
from golden.model import linear_layers
from golden.qmodel import load_quantized

FAST = ["--calib-samples", "4", "--calib-seqlen", "64", "--no-progress"]


def _check_roundtrip(out):
    model, results, manifest = load_quantized(out)
    params = dict(model.named_parameters())
    assert set(results) == {f"{n}" for n in linear_layers(model)}
    for name, res in results.items():
        # model.safetensors holds exactly the dequantized hardware tensors
        assert torch.equal(res.dequantize().float(), params[f"{name}.weight"]), name
        assert manifest["layers"][name]["effective_bits"] == pytest.approx(res.effective_bits())
    return model, results, manifest


def test_gptq_bitmod_folder(tiny, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", "--model", str(tiny), "--method", "gptq", "--format", "bitmod3",
                 "--act-order", "--out", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.safetensors",
                                                    "quantized.safetensors"]
    _, results, m = _check_roundtrip(out)
    from golden.formats import get_format_set
    assert m["method"] == "gptq" and m["format_set"] == "bitmod3"
    assert m["format_set_hash"] == get_format_set("bitmod3").hash
    assert m["group_size"] == 128 and m["act_order"] is True
    assert m["calibration"]["samples"] == 4 and m["seconds"] > 0
    # 3 code bits + 8 metadata bits per 128 weights + a 32-bit row scale per row of 128 or 256 inputs
    assert 3.0625 < m["effective_bits"] < 3.0625 + 32 / 128 + 1e-9
    assert set(m["per_layer_bits"].values()) == {3}
    # the float folder works with bitmix eval
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--max-windows", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] > 1


def test_shiftadd_with_bit_budget(tiny, tmp_path):
    out = tmp_path / "sa"
    assert main(["quantize", "--model", str(tiny), "--method", "shiftadd", "--bits", "2", "--rounds", "3",
                 "--bit-budget", "2.5", "--alloc-cost", "output", "--out", str(out), *FAST]) == 0
    _, results, m = _check_roundtrip(out)
    bits = m["per_layer_bits"]
    sizes = {n: e["shape"][0] * e["shape"][1] for n, e in m["layers"].items()}
    avg = sum(bits[n] * sizes[n] for n in bits) / sum(sizes.values())
    assert avg <= 2.5 + 1e-9 and len(set(bits.values())) > 1
    assert all(m["layers"][n]["bits"] == bits[n] for n in bits)
    assert m["layers"]["model.layers.0.self_attn.q_proj"]["layout"] == "col"
    assert m["allocation"]["budget"] == 2.5 and "heuristic_80_20" in m["allocation"]
    assert m["allocation"]["cost"] == "output" and m["allocation"]["used"] == "dp"


def test_80_20_allocator(tiny, tmp_path):
    out = tmp_path / "h"
    assert main(["quantize", "--model", str(tiny), "--method", "bcq", "--bits", "2", "--rounds", "2",
                 "--bit-budget", "2.2", "--allocator", "80/20", "--out", str(out), *FAST]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["allocation"]["used"] == "80/20"
    assert m["per_layer_bits"] == m["allocation"]["heuristic_80_20"]
    bits = m["per_layer_bits"]
    sizes = {n: e["shape"][0] * e["shape"][1] for n, e in m["layers"].items()}
    assert set(bits.values()) == {2, 3}
    assert sum(bits[n] * sizes[n] for n in bits) / sum(sizes.values()) <= 2.2 + 1e-9   # 20 % of parameters


@pytest.mark.parametrize("argv", [["--method", "rtn", "--format", "int4_asym"],
                                  ["--method", "bcq", "--bits", "3", "--rounds", "3"],
                                  ["--method", "mx", "--format", "fp4"]])
def test_other_methods_roundtrip(tiny, tmp_path, argv):
    out = tmp_path / "o"
    assert main(["quantize", "--model", str(tiny), *argv, "--out", str(out), *FAST]) == 0
    _check_roundtrip(out)
    # re-running into the same folder replaces it
    assert main(["quantize", "--model", str(tiny), *argv, "--out", str(out), *FAST]) == 0
    _check_roundtrip(out)


def _err(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_errors_name_file_tensor_field(tiny, tmp_path, capsys):
    err = _err(capsys, ["quantize", "--model", str(tiny), "--format", "nope", "--out", str(tmp_path / "x")])
    assert "--format nope" in err and "unknown format set" in err
    err = _err(capsys, ["quantize", "--model", str(tiny), "--method", "rtn", "--group-size", "96",
                        "--out", str(tmp_path / "x")])
    assert "model.layers.0.self_attn.q_proj.weight" in err and "96" in err
    err = _err(capsys, ["quantize", "--model", str(tiny), "--method", "shiftadd",
                        "--out", str(tmp_path / "x")])
    assert "--bits" in err
    bad = tmp_path / "nan"
    model = load_model(tiny)
    model.model.layers[1].mlp.up_proj.weight.data[2, 3] = float("nan")
    save_model(model, bad)
    err = _err(capsys, ["quantize", "--model", str(bad), "--method", "rtn", "--out", str(tmp_path / "x")])
    assert "model.safetensors" in err and "model.layers.1.mlp.up_proj.weight" in err and "NaN" in err
    assert not (tmp_path / "x").exists()
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    err = _err(capsys, ["quantize", "--model", str(tiny), "--method", "rtn", "--out", str(tmp_path / "user")])
    assert "refusing to overwrite" in err and (tmp_path / "user" / "notes.txt").exists()


def test_failure_leaves_nothing_partial(tiny, tmp_path, monkeypatch):
    import golden.qmodel as qm

    def boom(res, name):
        raise RuntimeError("disk full")

    monkeypatch.setattr(qm, "layer_tensors", boom)
    with pytest.raises(RuntimeError):
        main(["quantize", "--model", str(tiny), "--method", "rtn", "--out", str(tmp_path / "q"), *FAST])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- the README's quantize section runs as written

def _doc():
    from _readme import section
    return section("Quantizing a model")


def _doc_commands():
    import re
    blocks = re.findall(r"```console\n(.*?)```", _doc(), re.S)
    return [line.split()[1:] for b in blocks for line in b.splitlines() if line.startswith("bitmix ")]


def test_doc_commands_parse():
    from bitmix.cli import build_parser
    cmds = _doc_commands()
    assert len(cmds) >= 8
    parser = build_parser()
    for argv in cmds:
        args = parser.parse_args(argv)
        if argv[0] == "quantize":
            from bitmix.cmd_quantize import method_from_args
            method_from_args(args)          # option combinations are valid, not just parseable


def test_doc_python_example_runs():
    import re
    import subprocess
    import sys
    code = re.search(r"```python\n(.*?)```", _doc(), re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


@pytest.mark.slow
def test_doc_commands_run(tmp_path, monkeypatch):
    """Every command of the README's quantize section, in order, in a scratch folder (minutes)."""
    monkeypatch.chdir(tmp_path)
    for argv in _doc_commands():
        assert main(argv) == 0, argv
