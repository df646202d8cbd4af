"""`bitmix bench minilm`: all-MiniLM-L6-v2's real weights quantized with every method.

The orchestration only; the model, the sentences and the layer-by-layer quantization are
golden/minilm.py's. Reported: mean (and minimum) cosine similarity of the mean-pooled sentence
embeddings to the float model's, over sentences disjoint from the calibration sentences.
"""

from __future__ import annotations

import time

from bitmix.errors import BitmixError

__all__ = ["METHODS", "run_bench", "format_table"]

#: method key -> calibrate.Method kwargs
METHODS = {
    "int4_asym-rtn": dict(method="rtn", format_set="int4_asym"),
    "int3_asym-rtn": dict(method="rtn", format_set="int3_asym"),
    "ant4-rtn": dict(method="rtn", format_set="ant4"),
    "ant3-rtn": dict(method="rtn", format_set="ant3"),
    "bitmod4-rtn": dict(method="rtn", format_set="bitmod4"),
    "bitmod3-rtn": dict(method="rtn", format_set="bitmod3"),
    "int3_asym-gptq": dict(method="gptq", format_set="int3_asym"),
    "bitmod4-gptq": dict(method="gptq", format_set="bitmod4"),
    "bitmod3-gptq": dict(method="gptq", format_set="bitmod3"),
    "bcq3-rtn": dict(method="bcq", bits=3),
    "shiftadd3": dict(method="shiftadd", bits=3),
}


def run_bench(n_sentences: int = 256, n_calib: int = 64, methods=None, rounds: int = 10) -> dict:
    import copy

    from golden.bitalloc import weighted_bits
    from golden.calibrate import Method
    from golden.minilm import PACKAGE, embed, load_minilm, model_dir, quantize_minilm, sentences

    keys = list(METHODS) if not methods else list(methods)
    bad = [k for k in keys if k not in METHODS]
    if bad:
        raise BitmixError(f"unknown minilm method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    base, tok = load_minilm()
    calib = sentences(n_calib)
    evals = sentences(n_sentences, offset=n_calib)
    ref = embed(base, tok, evals)
    rows = []
    for k in keys:
        t0 = time.time()
        model = copy.deepcopy(base)
        m = Method(**METHODS[k], rounds=rounds)
        res = quantize_minilm(model, tok, m, calib)
        e = embed(model, tok, evals)
        cos = (e * ref).sum(-1)
        eff = weighted_bits(res)
        rows.append({"key": k, "effective_bits": eff, "mean_cosine": float(cos.mean()),
                     "min_cosine": float(cos.min()), "seconds": round(time.time() - t0, 2)})
    return {"schema": "bitmix-bench-minilm/1", "model": str(model_dir()), "package": PACKAGE,
            "sentences": n_sentences, "calibration_sentences": n_calib,
            "source": "pydoc_data.topics", "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"all-MiniLM-L6-v2, {result['sentences']} sentences "
             f"(calibration {result['calibration_sentences']})",
             f"{'method':16s} {'eff.bits':>8s} {'mean cos':>9s} {'min cos':>8s} {'time':>7s}"]
    for r in result["rows"]:
        lines.append(f"{r['key']:16s} {r['effective_bits']:8.3f} {r['mean_cosine']:9.5f} "
                     f"{r['min_cosine']:8.4f} {r['seconds']:6.1f}s")
    return "\n".join(lines)
