"""`bitmix bench quality`: perplexity vs effective bits per weight for every quantizer family.

The orchestration only: the quantizers (golden/calibrate.py) and the perplexity
(golden/evaluate.py) are golden's; the argument parsing is in bitmix/cmd_bench.py.

Runs on the shipped reference model and its held-out text (same windows as ``bitmix eval``), all
methods at group 128, and sets each relative degradation ``ppl / ppl_float − 1`` beside the
papers' Llama-2-7B degradation on WikiText-2 (architecture.md §3). Absolute perplexities of a 2.5 M-parameter
byte-level model are not comparable with a 7B model's; relative degradations and the ordering
are what carry over. Output: JSON, a printed table and a PNG plot (matplotlib, Agg).
"""

from __future__ import annotations

import copy
import json
import pathlib
import time
from dataclasses import dataclass

from bitmix.errors import BitmixError

__all__ = ["ROWS", "PAPER_FP16", "run_quality", "format_table", "plot", "ordering_checks"]

#: Llama-2-7B WikiText-2 perplexity, group 128 (docs/architecture.md §3; BitMoD and ShiftAddLLM papers).
PAPER_FP16 = 5.47


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    method: str | None            # None: float
    format_set: str | None = None
    bits: int | None = None
    budget: float | None = None
    paper: float | None = None
    allocator: str = "dp"    # Llama-2-7B perplexity of the corresponding paper row


ROWS: tuple[Row, ...] = (
    Row("float", "float (fp32)", None, paper=PAPER_FP16),
    Row("int4_asym-rtn", "INT4-asym RTN", "rtn", "int4_asym"),
    Row("int3_asym-rtn", "INT3-asym RTN", "rtn", "int3_asym"),
    Row("ant4-rtn", "ANT4 RTN", "rtn", "ant4", paper=6.09),
    Row("ant3-rtn", "ANT3 RTN", "rtn", "ant3", paper=7.51),
    Row("bitmod4-rtn", "BitMoD4 RTN", "rtn", "bitmod4", paper=5.72),
    Row("bitmod3-rtn", "BitMoD3 RTN", "rtn", "bitmod3", paper=6.51),
    Row("int4_asym-gptq", "INT4-asym GPTQ (OPTQ)", "gptq", "int4_asym"),
    Row("int3_asym-gptq", "INT3-asym GPTQ (OPTQ)", "gptq", "int3_asym", paper=6.43),
    Row("bitmod4-gptq", "BitMoD4 + GPTQ", "gptq", "bitmod4"),
    Row("bitmod3-gptq", "BitMoD3 + GPTQ", "gptq", "bitmod3"),
    Row("bcq3-rtn", "BCQ3 RTN (row)", "bcq", bits=3),
    Row("bcq2-rtn", "BCQ2 RTN (row)", "bcq", bits=2),
    Row("shiftadd3", "ShiftAdd3 (GPTQ+BCQ, Acc)", "shiftadd", bits=3, paper=5.89),
    Row("shiftadd2", "ShiftAdd2 (GPTQ+BCQ, Acc)", "shiftadd", bits=2, paper=8.51),
    Row("shiftadd-mix2.2", "ShiftAdd mixed 2.2 (bit alloc.)", "shiftadd", bits=2, budget=2.2),
    Row("shiftadd-mix-80-20", "ShiftAdd mixed 80/20 heuristic", "shiftadd", bits=2, budget=2.2,
        allocator="80/20"),
)
ROW_KEYS = tuple(r.key for r in ROWS)


def _rel(p, base):
    return None if p is None or base is None else p / base - 1.0


def ordering_checks(rows: list[dict]) -> dict[str, bool | None]:
    """The expected orderings, evaluated on the measured perplexities (None: a row is missing)."""
    ppl = {r["key"]: r["perplexity"] for r in rows}

    def lt(a, b):
        return None if a not in ppl or b not in ppl else bool(ppl[a] < ppl[b])

    out = {}
    for b in (4, 3):
        out[f"bitmod{b} < ant{b} (RTN)"] = lt(f"bitmod{b}-rtn", f"ant{b}-rtn")
        out[f"ant{b} < int{b}_asym (RTN)"] = lt(f"ant{b}-rtn", f"int{b}_asym-rtn")
        out[f"GPTQ improves bitmod{b}"] = lt(f"bitmod{b}-gptq", f"bitmod{b}-rtn")
        out[f"GPTQ improves int{b}_asym"] = lt(f"int{b}_asym-gptq", f"int{b}_asym-rtn")
    out["GPTQ improves BCQ3 (shiftadd3 < bcq3)"] = lt("shiftadd3", "bcq3-rtn")
    out["GPTQ improves BCQ2 (shiftadd2 < bcq2)"] = lt("shiftadd2", "bcq2-rtn")
    out["mix 2.2 < shiftadd2"] = lt("shiftadd-mix2.2", "shiftadd2")
    out["exact allocation < 80/20 heuristic"] = lt("shiftadd-mix2.2", "shiftadd-mix-80-20")
    return out


def run_quality(model_dir=None, rows: list[str] | None = None, window: int = 256,
                max_windows: int | None = None, calib_samples: int = 32, calib_seqlen: int = 256,
                group_size: int = 128, rounds: int = 20, seed: int = 0, act_order: bool = True,
                progress: bool = True, log=print) -> dict:
    """Quantize the model with every selected row's method and score it; returns the JSON dict."""
    from golden.bitalloc import bits_histogram
    from golden.calibrate import Method, quantize_model
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
    from golden.data import calibration_batches, encode, reference_corpus
    from golden.evaluate import num_windows, perplexity

    keys = list(ROW_KEYS) if not rows else list(rows)
    unknown = [k for k in keys if k not in ROW_KEYS]
    if unknown:
        raise BitmixError(f"unknown bench row(s) {', '.join(unknown)}; known: {', '.join(ROW_KEYS)}")
    if "float" not in keys:
        keys.insert(0, "float")            # degradations need the float baseline
    if max_windows is not None and max_windows < 1:
        raise BitmixError(f"max_windows must be >= 1, got {max_windows}")
    folder = pathlib.Path(model_dir) if model_dir else REFERENCE_MODEL_DIR
    base = load_model(folder)
    ids = encode(reference_corpus()[1])
    n_win = num_windows(len(ids), window, max_windows)
    if n_win == 0:
        raise BitmixError(f"held-out text is shorter than one window of {window}")
    calib = calibration_batches(calib_samples, calib_seqlen, seed=seed)
    t_all = time.time()
    out_rows = []
    float_ppl = None
    for row in (r for r in ROWS if r.key in keys):
        t0 = time.time()
        model = copy.deepcopy(base)
        eff, nominal, bits_hist = 32.0, 32, None
        if row.method is not None:
            m = Method(method=row.method, format_set=row.format_set, bits=row.bits,
                       group_size=group_size, rounds=rounds,
                       act_order=act_order and row.method in ("gptq", "shiftadd"))
            rep = quantize_model(model, m, calib, bit_budget=row.budget, progress=progress,
                                 allocator=row.allocator)
            eff = rep.effective_bits()
            nominal = m.default_bits
            if row.budget is not None:
                nominal = round(rep.nominal_bits(), 3)
                bits_hist = {str(b): n for b, n in bits_histogram(rep.bits).items()}
        tq = time.time() - t0
        ppl = perplexity(model, ids, window, progress=False, max_windows=max_windows)
        if row.method is None:
            float_ppl = ppl
        rec = {"key": row.key, "label": row.label, "method": row.method, "format_set": row.format_set,
               "bits": nominal, "effective_bits": eff, "perplexity": ppl,
               "degradation": _rel(ppl, float_ppl),
               "paper_perplexity": row.paper, "paper_degradation": _rel(row.paper, PAPER_FP16),
               "quantize_seconds": round(tq, 2), "seconds": round(time.time() - t0, 2)}
        if bits_hist:
            rec["bits_per_layer_histogram"] = bits_hist
        out_rows.append(rec)
        log(f"  {row.label:34s} eff {eff:6.3f} bits  ppl {ppl:9.4f}  ({rec['seconds']:.1f} s)")
        del model
    return {"schema": "bitmix-bench-quality/1", "model": str(folder),
            "text": "reference held-out split (pydoc_data.topics)", "window": window, "windows": n_win,
            "group_size": group_size, "bcq_rounds": rounds, "act_order": act_order,
            "calibration": {"samples": calib_samples, "seqlen": calib_seqlen, "seed": seed},
            "paper_reference": {"model": "Llama-2-7B", "dataset": "WikiText-2", "fp16": PAPER_FP16},
            "rows": out_rows, "ordering": ordering_checks(out_rows),
            "total_seconds": round(time.time() - t_all, 1)}


def _f(v, fmt):
    return "—" if v is None else format(v, fmt)


def format_table(result: dict) -> str:
    lines = [f"{'method':34s} {'bits':>5s} {'eff.bits':>8s} {'ppl':>9s} {'degr.':>8s} "
             f"{'paper ppl':>9s} {'paper degr.':>11s}"]
    for r in result["rows"]:
        lines.append(f"{r['label']:34s} {_f(r['bits'], 'g'):>5s} {r['effective_bits']:8.3f} "
                     f"{r['perplexity']:9.4f} {_f(r['degradation'], '+.2%'):>8s} "
                     f"{_f(r['paper_perplexity'], '.2f'):>9s} {_f(r['paper_degradation'], '+.2%'):>11s}")
    lines.append("")
    lines.append("ordering (measured):")
    for k, v in result["ordering"].items():
        lines.append(f"  {'yes' if v else ('n/a' if v is None else 'NO '):3s}  {k}")
    return "\n".join(lines)


def plot(result: dict, path) -> pathlib.Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    fams = {"rtn": "o", "gptq": "s", "bcq": "^", "shiftadd": "D"}
    colors = plt.get_cmap("tab20").colors
    fl = None
    for i, r in enumerate(result["rows"]):
        if r["method"] is None:
            fl = r["perplexity"]
            continue
        ax.scatter(r["effective_bits"], r["perplexity"], marker=fams.get(r["method"], "x"), s=42,
                   color=colors[i % len(colors)], label=f"{r['label']} ({r['perplexity']:.4f})")
    if fl is not None:
        ax.axhline(fl, color="gray", ls="--", lw=1, label=f"float ({fl:.4f})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_xlabel("effective bits per weight (incl. metadata)")
    ax.set_ylabel("held-out perplexity")
    ax.set_title(f"bitmix quality: {pathlib.Path(result['model']).name}, group {result['group_size']}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(result: dict, out_dir) -> tuple[pathlib.Path, pathlib.Path]:
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jp = out_dir / "quality.json"
    tmp = jp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(jp)
    pp = plot(result, out_dir / "quality.png")
    return jp, pp
