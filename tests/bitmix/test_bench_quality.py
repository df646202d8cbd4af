"""`bitmix bench quality` on a tiny subset: JSON schema, table, plot, float row == `bitmix eval`."""

import json

import pytest

from bitmix.cli import main
from golden.checkpoint import REFERENCE_MODEL_DIR, save_model
from golden.model import LlamaConfig, LlamaForCausalLM

ROWS = "float,bitmod3-rtn,bitmod3-gptq,bcq2-rtn"   # ShiftAdd is covered by test_quantize_cli (time)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The shipped reference model (a tiny random model stands in until it is committed)."""
    if (REFERENCE_MODEL_DIR / "config.json").is_file():
        return REFERENCE_MODEL_DIR
    cfg = LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model(LlamaForCausalLM(cfg).init_weights(0), folder)
    return folder


def test_bench_quality_subset(model_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "quality", "--model", str(model_dir), "--max-windows", "2", "--calib-samples", "2",
            "--calib-seqlen", "64", "--rounds", "2", "--rows", ROWS, "--out", str(out), "--json"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["schema"] == "bitmix-bench-quality/2"
    assert res["windows"] == 2 and res["window"] == 256 and res["group_size"] == 128
    assert [r["key"] for r in res["rows"]] == ROWS.split(",")
    keys = {"key", "label", "method", "format_set", "bits", "effective_bits", "perplexity", "degradation",
            "paper_perplexity", "paper_degradation", "quantize_seconds", "seconds"}
    for r in res["rows"]:
        assert keys <= set(r)
        assert r["perplexity"] > 1
    rows = {r["key"]: r for r in res["rows"]}
    fl = rows["float"]
    assert fl["degradation"] == 0 and fl["effective_bits"] == 32
    b3 = rows["bitmod3-rtn"]
    assert b3["degradation"] == pytest.approx(b3["perplexity"] / fl["perplexity"] - 1)
    ci = b3["texts"]["heldout"]["degradation_ci"]
    assert ci["value"] == pytest.approx(b3["degradation"], rel=1e-9) and ci["lo"] <= ci["value"] <= ci["hi"]
    assert res["texts"]["heldout"]["windows"] == 2 and res["bootstrap"]["paired"]
    assert b3["paper_degradation"] == pytest.approx(6.51 / 5.47 - 1)
    assert 3.0 < b3["effective_bits"] < 3.4 and 2.0 < rows["bcq2-rtn"]["effective_bits"] < 2.6
    # the ordering is the ratio of the two measured perplexities; it "holds" only if its CI is below 0
    o = res["ordering"]["GPTQ improves bitmod3"]["heldout"]
    ratio = rows["bitmod3-gptq"]["perplexity"] / rows["bitmod3-rtn"]["perplexity"]
    assert o["value"] == pytest.approx(ratio - 1)
    assert o["lo"] <= o["value"] <= o["hi"]
    assert o["holds"] is (True if o["hi"] < 0 else (False if o["lo"] > 0 else None))
    assert res["ordering"]["bitmod4 < ant4 (RTN)"]["heldout"]["holds"] is None       # rows not run
    assert json.loads((out / "quality.json").read_text()) == res
    assert (out / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the float row is exactly what `bitmix eval` reports on the same windows
    assert main(["eval", "--model", str(model_dir), "--max-windows", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] == fl["perplexity"]


def test_bench_table_and_bad_rows(model_dir, tmp_path, capsys):
    assert main(["bench", "quality", "--model", str(model_dir), "--max-windows", "2", "--rows", "bitmod4-rtn",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "BitMoD4 RTN" in text and "float (fp32)" in text and "orderings (ppl_a / ppl_b - 1" in text
    assert str(tmp_path / "quality.png") in text
    assert main(["bench", "quality", "--rows", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown bench row" in capsys.readouterr().err
    assert main(["bench", "quality", "--model", str(model_dir), "--max-windows", "1",
                 "--out", str(tmp_path)]) == 2
    assert "a bootstrap needs at least 2" in capsys.readouterr().err


def test_calibration_on_an_evaluation_text_stays_after_its_scored_windows(model_dir, tmp_path, capsys):
    argv = ["bench", "quality", "--model", str(model_dir), "--rows", "bitmod3-gptq", "--texts", "docstrings",
            "--calib-text", "docstrings", "--calib-samples", "2", "--calib-seqlen", "64",
            "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--calib-text needs --max-windows" in capsys.readouterr().err
    assert main([*argv, "--max-windows", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["calibration"]["source"] == "docstrings (after its first 2 windows of 256)"
    assert (tmp_path / "quality-calib-docstrings.json").is_file()
