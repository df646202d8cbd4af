"""`bitmix bench minilm`: all-MiniLM-L6-v2's real weights quantized with every method.

The orchestration only; the model, the sentences and the layer-by-layer quantization are
golden/minilm.py's. Reported: mean (and minimum) cosine similarity of the mean-pooled sentence
embeddings to the float model's, over sentences disjoint from the calibration sentences.
"""

from __future__ import annotations

import time

import torch

from bitmix.errors import BitmixError

__all__ = ["METHODS", "ORDERINGS", "run_bench", "format_table"]

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


#: orderings (a has the higher mean cosine than b), judged by a paired bootstrap over sentences
ORDERINGS = [
    ("bitmod4 > ant4 (RTN)", "bitmod4-rtn", "ant4-rtn"),
    ("bitmod3 > ant3 (RTN)", "bitmod3-rtn", "ant3-rtn"),
    ("bitmod4 > int4_asym (RTN)", "bitmod4-rtn", "int4_asym-rtn"),
    ("bitmod3 > int3_asym (RTN)", "bitmod3-rtn", "int3_asym-rtn"),
    ("ant4 > int4_asym (RTN)", "ant4-rtn", "int4_asym-rtn"),
    ("ant3 > int3_asym (RTN)", "ant3-rtn", "int3_asym-rtn"),
    ("GPTQ improves bitmod4", "bitmod4-gptq", "bitmod4-rtn"),
    ("GPTQ improves bitmod3", "bitmod3-gptq", "bitmod3-rtn"),
    ("GPTQ improves int3_asym", "int3_asym-gptq", "int3_asym-rtn"),
    ("GPTQ improves BCQ3 (shiftadd3 > bcq3)", "shiftadd3", "bcq3-rtn"),
]


def run_bench(n_sentences: int = 256, n_calib: int = 64, methods=None, rounds: int = 10,
              source: str = "topics", boot: int = 2000) -> dict:
    """Calibration sentences are always the first ``n_calib`` of pydoc_data.topics; the evaluated
    ones come from ``source`` (``topics``: the next ``n_sentences``, same domain)."""
    import copy

    from bitmix.stats import mean_diff_ci, resample_index
    from golden.bitalloc import weighted_bits
    from golden.calibrate import Method
    from golden.minilm import PACKAGE, embed, load_minilm, model_dir, quantize_minilm, sentences

    keys = list(METHODS) if not methods else list(methods)
    bad = [k for k in keys if k not in METHODS]
    if bad:
        raise BitmixError(f"unknown minilm method(s) {', '.join(bad)}; known: {', '.join(METHODS)}")
    base, tok = load_minilm()
    calib = sentences(n_calib)
    evals = sentences(n_sentences, offset=n_calib if source == "topics" else 0, source=source)
    idx = resample_index(len(evals), boot, 0)
    ref = embed(base, tok, evals)
    rows, cosines = [], {}
    for k in keys:
        t0 = time.time()
        model = copy.deepcopy(base)
        m = Method(**METHODS[k], rounds=rounds)
        res = quantize_minilm(model, tok, m, calib)
        e = embed(model, tok, evals)
        cos = (e * ref).sum(-1).double()
        cosines[k] = cos
        ci = mean_diff_ci(cos, torch.zeros_like(cos), idx)
        rows.append({"key": k, "effective_bits": weighted_bits(res), "mean_cosine": float(cos.mean()),
                     "mean_cosine_ci": [ci["lo"], ci["hi"]],
                     "min_cosine": float(cos.min()), "seconds": round(time.time() - t0, 2)})
    ordering = {}
    for name, a, b in ORDERINGS:
        if a in cosines and b in cosines:
            ci = mean_diff_ci(cosines[a], cosines[b], idx)
            ci["holds"] = True if ci["lo"] > 0 else (False if ci["hi"] < 0 else None)
            ordering[name] = ci
    return {"schema": "bitmix-bench-minilm/2", "model": str(model_dir()), "package": PACKAGE,
            "sentences": n_sentences, "calibration_sentences": n_calib,
            "calibration_source": "pydoc_data.topics", "source": source,
            "bootstrap": {"resamples": boot, "level": 0.95, "unit": "sentence", "paired": True},
            "rows": rows, "ordering": ordering}


def format_table(result: dict) -> str:
    lines = [f"all-MiniLM-L6-v2, {result['sentences']} sentences from {result['source']} "
             f"(calibration {result['calibration_sentences']} from {result['calibration_source']})",
             f"{'method':16s} {'eff.bits':>8s} {'mean cos':>9s} {'95% CI':>19s} {'min cos':>8s} {'time':>7s}"]
    for r in result["rows"]:
        lo, hi = r["mean_cosine_ci"]
        lines.append(f"{r['key']:16s} {r['effective_bits']:8.3f} {r['mean_cosine']:9.5f} "
                     f"[{lo:.4f}, {hi:.4f}] {r['min_cosine']:8.4f} {r['seconds']:6.1f}s")
    lines.append("")
    lines.append("orderings (difference of mean cosines, 95 % paired-bootstrap CI; "
                 "'holds' if it excludes 0):")
    for name, ci in result["ordering"].items():
        word = {True: "holds", False: "REVERSED", None: "n.s."}[ci["holds"]]
        lines.append(f"  {word:8s} {name:40s} {ci['value']:+.4f} [{ci['lo']:+.4f}, {ci['hi']:+.4f}]")
    return "\n".join(lines)
