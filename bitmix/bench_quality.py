"""`bitmix bench quality`: perplexity vs effective bits per weight for every quantizer family.

The orchestration only: the quantizers (golden/calibrate.py), the perplexity
(golden/evaluate.py), the models (golden/lm.py) and the texts (golden/texts.py) are golden's;
the argument parsing is in bitmix/cmd_bench.py, the statistics in bitmix/stats.py.

Runs on a model (default the shipped reference model; ``smollm2`` for SmolLM2-135M-Instruct)
and one or more evaluation texts, all methods at one group size (128, or 64 where the inputs are
not a multiple of 128), and sets each relative degradation ``ppl / ppl_float − 1`` — with its
95 % paired-bootstrap interval over windows — beside the papers' Llama-2-7B degradation on
WikiText-2 (docs/architecture.md §3). Every stated ordering is evaluated the same way: it holds
only when its interval excludes zero. Absolute perplexities of small models are not comparable
with a 7B model's; relative degradations and the orderings are what carry over.
Output: JSON, a printed table and a PNG plot (matplotlib, Agg).
"""

from __future__ import annotations

import copy
import json
import math
import pathlib
import time
from dataclasses import dataclass

import torch

from bitmix.errors import BitmixError

__all__ = ["ROWS", "PAPER_FP16", "ORDERINGS", "DEFAULT_TEXTS", "run_quality", "merge", "format_table",
           "format_markdown", "plot"]

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
    paper: float | None = None    # Llama-2-7B perplexity of the corresponding paper row
    allocator: str = "dp"
    layout: str | None = None     # BCQ/ShiftAdd scale layout (None: the method's default)
    group_size: int | None = None  # None: the run's group size (MX uses its own 32)


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
    Row("shiftadd3-lat", "ShiftAdd3 (GPTQ+BCQ, Lat)", "shiftadd", bits=3, layout="block"),
    Row("shiftadd2-lat", "ShiftAdd2 (GPTQ+BCQ, Lat)", "shiftadd", bits=2, layout="block"),
    Row("mxfp4", "MX-FP4 RTN (group 32)", "mx", "fp4", group_size=32),
    Row("shiftadd-mix2.2", "ShiftAdd mixed 2.2 (bit alloc.)", "shiftadd", bits=2, budget=2.2),
    Row("shiftadd-mix-80-20", "ShiftAdd mixed 80/20 heuristic", "shiftadd", bits=2, budget=2.2,
        allocator="80/20"),
)
ROW_KEYS = tuple(r.key for r in ROWS)
#: texts scored by default: the reference model's own held-out split; for SmolLM2 two texts of
#: other domains than its calibration text (golden/texts.py)
DEFAULT_TEXTS = {"reference": ("heldout",), "smollm2": ("licenses", "docstrings")}
#: windows scored per text when --max-windows is not given: all for the reference model (148 of
#: the held-out split); 16 for SmolLM2, whose texts hold ~200 windows each and whose rows take
#: ~1 min per 32 windows on the 2-core machine (the README states the run times)
DEFAULT_MAX_WINDOWS = {"reference": None, "smollm2": 16}
#: rows run by default on SmolLM2 (all rows: --rows all); the reference model runs every row
SMOLLM2_ROWS = ("float", "int4_asym-rtn", "int3_asym-rtn", "ant4-rtn", "ant3-rtn", "bitmod4-rtn",
                "bitmod3-rtn", "mxfp4", "int3_asym-gptq", "bitmod3-gptq")


def _orderings() -> list[tuple[str, str, str]]:
    """(name, a, b): the ordering "a has lower perplexity than b" the papers state or we test."""
    out = []
    for b in (4, 3):
        out.append((f"bitmod{b} < ant{b} (RTN)", f"bitmod{b}-rtn", f"ant{b}-rtn"))
        out.append((f"ant{b} < int{b}_asym (RTN)", f"ant{b}-rtn", f"int{b}_asym-rtn"))
        out.append((f"bitmod{b} < int{b}_asym (RTN)", f"bitmod{b}-rtn", f"int{b}_asym-rtn"))
        out.append((f"GPTQ improves bitmod{b}", f"bitmod{b}-gptq", f"bitmod{b}-rtn"))
        out.append((f"GPTQ improves int{b}_asym", f"int{b}_asym-gptq", f"int{b}_asym-rtn"))
        out.append((f"bitmod{b} < int{b}_asym (GPTQ)", f"bitmod{b}-gptq", f"int{b}_asym-gptq"))
    out.append(("bitmod4 < mxfp4", "bitmod4-rtn", "mxfp4"))
    out.append(("GPTQ improves BCQ3 (shiftadd3 < bcq3)", "shiftadd3", "bcq3-rtn"))
    out.append(("GPTQ improves BCQ2 (shiftadd2 < bcq2)", "shiftadd2", "bcq2-rtn"))
    out.append(("bitmod3 GPTQ < shiftadd3", "bitmod3-gptq", "shiftadd3"))
    out.append(("ShiftAdd3 Acc < Lat", "shiftadd3", "shiftadd3-lat"))
    out.append(("ShiftAdd2 Acc < Lat", "shiftadd2", "shiftadd2-lat"))
    out.append(("mix 2.2 < shiftadd2", "shiftadd-mix2.2", "shiftadd2"))
    out.append(("exact allocation < 80/20 heuristic", "shiftadd-mix2.2", "shiftadd-mix-80-20"))
    return out


ORDERINGS = _orderings()
SCHEMA = "bitmix-bench-quality/3"


def _rel(p, base):
    return None if p is None or base is None else p / base - 1.0


def ordering_checks(nlls: dict, texts, tokens_per_window: int, idx: dict, orderings=None) -> dict:
    """Every ordering (default :data:`ORDERINGS`) on every text: ``{name: {text: {value, lo, hi, holds}}}``.

    ``value`` is ``ppl_a / ppl_b − 1`` with its 95 % paired-bootstrap interval ``[lo, hi]``;
    ``holds`` is True when the interval lies below 0, False when above, None when it contains 0
    (not significant) or a row was not run.
    """
    from bitmix.stats import ppl_ratio_ci

    out = {}
    for name, a, b in (ORDERINGS if orderings is None else orderings):
        out[name] = {}
        for t in texts:
            if a not in nlls or b not in nlls:
                out[name][t] = {"value": None, "lo": None, "hi": None, "holds": None}
                continue
            ci = ppl_ratio_ci(nlls[a][t], nlls[b][t], tokens_per_window, idx[t])
            ci["holds"] = True if ci["hi"] < 0 else (False if ci["lo"] > 0 else None)
            out[name][t] = ci
    return out


def _method(row: Row, group_size: int, rounds: int, act_order: bool):
    from golden.calibrate import Method

    return Method(method=row.method, format_set=row.format_set, bits=row.bits,
                  group_size=row.group_size or group_size, rounds=rounds, layout=row.layout,
                  act_order=act_order and row.method in ("gptq", "shiftadd"))


def run_quality(model=None, rows: list[str] | None = None, window: int = 256,
                max_windows: int | None = None, calib_samples: int = 32, calib_seqlen: int = 256,
                group_size: int | None = None, rounds: int = 20, seed: int = 0, act_order: bool = True,
                texts: list[str] | None = None, boot: int = 2000, calib_text: str | None = None,
                progress: bool = True, log=print, on_row=None) -> dict:
    """Quantize the model with every selected row's method and score it; returns the JSON dict.

    Every row keeps its per-window NLLs (``texts[t]["window_nll"]``) so that runs on the same
    windows can be combined later with paired intervals (:func:`merge`). ``on_row(result)`` is
    called with the result so far after every row (the CLI writes it: a long run that is stopped
    keeps its finished rows).

    ``calib_text`` (an evaluation text's name) calibrates on that text instead of the reference
    train split: on windows drawn after the ones that are scored (``max_windows`` is then
    required), so calibration and evaluation never share a token — the calibration-domain check.
    """
    from bitmix.stats import ppl_ratio_ci, resample_index
    from golden.bitalloc import bits_histogram
    from golden.calibrate import group_size_for, quantize_model
    from golden.data import calibration_batches
    from golden.evaluate import num_windows, window_nlls
    from golden.lm import load_lm
    from golden.texts import eval_text

    kind = "smollm2" if model == "smollm2" else "reference"
    if rows == ["all"]:
        rows = None
    keys = (list(SMOLLM2_ROWS) if kind == "smollm2" else list(ROW_KEYS)) if not rows else list(rows)
    unknown = [k for k in keys if k not in ROW_KEYS]
    if unknown:
        raise BitmixError(f"unknown bench row(s) {', '.join(unknown)}; known: {', '.join(ROW_KEYS)}")
    if "float" not in keys:
        keys.insert(0, "float")            # degradations need the float baseline
    if max_windows is None:
        max_windows = DEFAULT_MAX_WINDOWS[kind]
    if max_windows is not None and max_windows < 1:
        raise BitmixError(f"max_windows must be >= 1, got {max_windows}")
    texts = list(texts or DEFAULT_TEXTS[kind])
    lm = load_lm(model)
    base, tok = lm.model, lm.tokenizer
    g = group_size or group_size_for(base)
    ids, text_info, idx = {}, {}, {}
    for t in texts:
        raw, desc = eval_text(t)
        ids[t] = tok.encode(raw)
        n_win = num_windows(len(ids[t]), window, max_windows)
        if n_win < 2:
            raise BitmixError(f"text {t} ({desc}): {len(ids[t])} tokens give {n_win} window(s) of "
                              f"{window}; a bootstrap needs at least 2")
        text_info[t] = {"source": desc, "bytes": len(raw), "tokens": len(ids[t]), "windows": n_win,
                        "windows_available": len(ids[t]) // window}
        idx[t] = resample_index(n_win, boot, seed)
    if calib_text is None:
        calib = calibration_batches(calib_samples, calib_seqlen, seed=seed, tokenize=tok.encode)
        calib_source, calib_name = "reference train split (pydoc_data.topics)", "topics-train"
    else:
        if max_windows is None:
            raise BitmixError("--calib-text needs --max-windows: calibration is drawn after the "
                              "scored windows")
        cids = tok.encode(eval_text(calib_text)[0])[max_windows * window:]
        if len(cids) <= calib_seqlen:
            raise BitmixError(f"text {calib_text}: {len(cids)} tokens left after the scored windows, "
                              f"fewer than --calib-seqlen {calib_seqlen}")
        gen = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(cids) - calib_seqlen, (calib_samples,), generator=gen).tolist()
        calib = torch.stack([cids[s:s + calib_seqlen] for s in starts])
        calib_source = f"{calib_text} (after its first {max_windows} windows of {window})"
        calib_name = calib_text
    t_all = time.time()
    out_rows, nlls = [], {}

    def result() -> dict:
        return {"schema": SCHEMA, "model": lm.source, "model_name": lm.name,
                "tokenizer": tok.name, "texts": text_info, "text": text_info[texts[0]]["source"],
                "window": window, "windows": text_info[texts[0]]["windows"], "max_windows": max_windows,
                "group_size": g, "bcq_rounds": rounds, "act_order": act_order,
                "calibration": {"name": calib_name, "source": calib_source, "samples": calib_samples,
                                "seqlen": calib_seqlen, "seed": seed},
                "bootstrap": {"resamples": boot, "level": 0.95, "unit": "window", "paired": True,
                              "seed": seed},
                "paper_reference": {"model": "Llama-2-7B", "dataset": "WikiText-2", "fp16": PAPER_FP16},
                "rows": out_rows, "ordering": ordering_checks(nlls, texts, window - 1, idx),
                "total_seconds": round(time.time() - t_all, 1)}

    for row in (r for r in ROWS if r.key in keys):
        t0 = time.time()
        m_ = copy.deepcopy(base)
        eff, nominal, bits_hist = 32.0, 32, None
        if row.method is not None:
            m = _method(row, g, rounds, act_order)
            rep = quantize_model(m_, m, calib, bit_budget=row.budget, progress=progress,
                                 allocator=row.allocator)
            eff = rep.effective_bits()
            nominal = m.default_bits
            if row.budget is not None:
                nominal = round(rep.nominal_bits(), 3)
                bits_hist = {str(b): n for b, n in bits_histogram(rep.bits).items()}
        tq = time.time() - t0
        nlls[row.key] = {t: window_nlls(m_, ids[t], window, progress=False, max_windows=max_windows)
                         for t in texts}
        per_text = {}
        for t in texts:
            nll = nlls[row.key][t]
            ppl = math.exp(float(nll.sum()) / (len(nll) * (window - 1)))
            rec = {"perplexity": ppl, "window_nll": nll.tolist()}
            if row.key != "float":
                rec["degradation_ci"] = ppl_ratio_ci(nll, nlls["float"][t], window - 1, idx[t])
            per_text[t] = rec
        first = per_text[texts[0]]
        rec = {"key": row.key, "label": row.label, "method": row.method, "format_set": row.format_set,
               "group_size": None if row.method is None else (row.group_size or g),
               "bits": nominal, "effective_bits": eff, "perplexity": first["perplexity"],
               "degradation": _rel(first["perplexity"], out_rows[0]["perplexity"] if out_rows
                                   else first["perplexity"]),
               "texts": per_text,
               "paper_perplexity": row.paper, "paper_degradation": _rel(row.paper, PAPER_FP16),
               "quantize_seconds": round(tq, 2), "seconds": round(time.time() - t0, 2)}
        if bits_hist:
            rec["bits_per_layer_histogram"] = bits_hist
        out_rows.append(rec)
        log(f"  {row.label:34s} eff {eff:6.3f} bits  " +
            "  ".join(f"{t} {per_text[t]['perplexity']:9.4f}" for t in texts) + f"  ({rec['seconds']:.1f} s)")
        del m_
        if on_row is not None:
            on_row(result())
    return result()


#: fields that must agree for two runs to have scored the same windows of the same model
_SAME = ("model", "tokenizer", "window", "group_size")
#: methods whose result depends on the calibration text (the rest ignore it)
_CALIBRATED = ("gptq", "shiftadd")


def merge(results: list[dict], names: list[str] | None = None) -> dict:
    """Combine runs that scored the same windows into one result with paired intervals across runs.

    Long benches are run in pieces (``--rows`` subsets); because every row keeps its per-window
    NLLs, the degradations and every ordering are recomputed here exactly as if the rows had been
    run together. Each run's float row must reproduce the first run's (same model, tokenizer,
    texts and windows). A calibrated row (GPTQ, ShiftAdd) from a run with another calibration
    text than the first is kept under ``<key>@<calibration>`` and compared with the first run's
    row of the same key — the calibration-domain check. ``names`` (file names) label errors.
    """
    from bitmix.stats import ppl_ratio_ci, resample_index

    names = names or [f"run {i + 1}" for i in range(len(results))]
    if not results:
        raise BitmixError("merge: no results given")
    for r, n in zip(results, names):
        if r.get("schema") != SCHEMA or any("window_nll" not in x["texts"][t]
                                            for x in r.get("rows", []) for t in x["texts"]):
            raise BitmixError(f"{n}: not a {SCHEMA} result with per-window NLLs (rerun the bench)")
    base, texts = results[0], list(results[0]["texts"])
    wins = {t: base["texts"][t]["windows"] for t in texts}
    cal0 = base["calibration"]["name"]
    rows, nlls, extra, runs = {}, {}, [], []
    for r, n in zip(results, names):
        for f in _SAME:
            if r[f] != base[f]:
                raise BitmixError(f"{n}: {f} {r[f]!r} differs from {names[0]}'s {base[f]!r}")
        got = {t: r["texts"][t]["windows"] for t in r["texts"]}
        if got != wins:
            raise BitmixError(f"{n}: texts/windows {got} differ from {names[0]}'s {wins}")
        cal = r["calibration"]["name"]
        runs.append({"file": n, "calibration": r["calibration"], "rows": [x["key"] for x in r["rows"]],
                     "total_seconds": r["total_seconds"]})
        for row in r["rows"]:
            key, row = row["key"], copy.deepcopy(row)
            if cal != cal0 and row["method"] in _CALIBRATED:
                row["key"] = f"{key}@{cal}"
                row["label"] += f", calib. {cal}"
                extra.append((f"calib. {cal} < {cal0}: {key}", row["key"], key))
            row["calibration"] = cal if row["method"] in _CALIBRATED else None
            nll = {t: torch.tensor(row["texts"][t]["window_nll"], dtype=torch.float64) for t in texts}
            if row["key"] in nlls:
                same = all(torch.allclose(nll[t], nlls[row["key"]][t], rtol=1e-6, atol=0) for t in texts)
                if not same:
                    raise BitmixError(f"{n}: row {row['key']} differs from the same row in an earlier "
                                      "file (not the same windows or model)")
                continue
            rows[row["key"]], nlls[row["key"]] = row, nll
    if "float" not in rows:
        raise BitmixError(f"{names[0]}: no float row")
    boot, seed = base["bootstrap"]["resamples"], base["bootstrap"]["seed"]
    idx = {t: resample_index(wins[t], boot, seed) for t in texts}
    order = {k: i for i, k in enumerate(ROW_KEYS)}
    keys = sorted(rows, key=lambda k: (order.get(k.split("@")[0], len(order)), "@" in k, k))
    for k in keys:
        for t in texts:
            if k != "float":
                rows[k]["texts"][t]["degradation_ci"] = ppl_ratio_ci(nlls[k][t], nlls["float"][t],
                                                                     base["window"] - 1, idx[t])
    extra = [o for o in dict.fromkeys(extra) if o[2] in nlls]
    out = copy.deepcopy({k: v for k, v in base.items() if k != "rows"})
    out.update(rows=[rows[k] for k in keys], merged_from=runs,
               ordering=ordering_checks(nlls, texts, base["window"] - 1, idx, ORDERINGS + extra),
               total_seconds=round(sum(r["total_seconds"] for r in results), 1))
    return out


def _f(v, fmt):
    return "—" if v is None else format(v, fmt)


def _ci_text(ci) -> str:
    if ci is None:
        return "—"
    return f"{ci['value']:+.2%} [{ci['lo']:+.2%}, {ci['hi']:+.2%}]"


def format_table(result: dict) -> str:
    texts = list(result["texts"])
    head = f"{'method':34s} {'bits':>5s} {'eff.bits':>8s} "
    head += " ".join(f"{t + ' ppl':>11s} {'degr. [95% CI]':>27s}" for t in texts)
    head += f" {'paper ppl':>9s} {'paper degr.':>11s}"
    lines = [head]
    for r in result["rows"]:
        cells = " ".join(f"{r['texts'][t]['perplexity']:11.4f} "
                         f"{_ci_text(r['texts'][t].get('degradation_ci')):>27s}" for t in texts)
        lines.append(f"{r['label']:34s} {_f(r['bits'], 'g'):>5s} {r['effective_bits']:8.3f} {cells} "
                     f"{_f(r['paper_perplexity'], '.2f'):>9s} {_f(r['paper_degradation'], '+.2%'):>11s}")
    lines.append("")
    lines.append("orderings (ppl_a / ppl_b - 1 with 95 % paired-bootstrap CI; "
                 "'holds' only if the CI excludes 0):")
    for name, per in result["ordering"].items():
        for t, ci in per.items():
            if ci["value"] is None:
                continue
            word = {True: "holds", False: "REVERSED", None: "n.s."}[ci["holds"]]
            lines.append(f"  {word:8s} {name:40s} {t:10s} {_ci_text(ci)}")
    return "\n".join(lines)


def _md_ci(ci) -> str:
    return "—" if ci is None else f"{ci['value']:+.2%} [{ci['lo']:+.2%}, {ci['hi']:+.2%}]"


def format_markdown(result: dict) -> str:
    """The README's tables: rows with per-text perplexity and degradation [95 % CI]; orderings."""
    texts = list(result["texts"])
    head = "| method | bits | eff. bits | " + " | ".join(f"{t} ppl | {t} degradation [95 % CI]"
                                                        for t in texts)
    head += " | Llama-2-7B ppl (paper) | paper degradation |"
    lines = [head, "|" + "---|" * (5 + 2 * len(texts))]
    for r in result["rows"]:
        cells = " | ".join(f"{r['texts'][t]['perplexity']:.4f} | "
                           f"{_md_ci(r['texts'][t].get('degradation_ci'))}" for t in texts)
        lines.append(f"| {r['label']} | {_f(r['bits'], 'g')} | {r['effective_bits']:.3f} | {cells} | "
                     f"{_f(r['paper_perplexity'], '.2f')} | {_f(r['paper_degradation'], '+.1%')} |")
    lines += ["", "| ordering (ppl_a / ppl_b − 1) | " + " | ".join(texts) + " |",
              "|---|" + "---|" * len(texts)]
    for name, per in result["ordering"].items():
        if all(per[t]["value"] is None for t in texts):
            continue
        cells = []
        for t in texts:
            ci = per[t]
            word = {True: "**holds**", False: "**reversed**", None: "n.s."}[ci["holds"]]
            cells.append("—" if ci["value"] is None else f"{word} {_md_ci(ci)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(result: dict, path) -> pathlib.Path:
    """Degradation vs effective bits, one panel per text, 95 % intervals as error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = list(result["texts"])
    fig, axes = plt.subplots(1, len(texts), figsize=(7 * len(texts) + 3, 5.5), squeeze=False)
    fams = {"rtn": "o", "gptq": "s", "bcq": "^", "shiftadd": "D", "mx": "v"}
    colors = plt.get_cmap("tab20").colors
    for ax, t in zip(axes[0], texts):
        for i, r in enumerate(result["rows"]):
            ci = r["texts"][t].get("degradation_ci")
            if ci is None:
                continue
            dx = 0.006 * (i - len(result["rows"]) / 2)         # rows at equal bits side by side
            ax.errorbar(r["effective_bits"] + dx, 100 * ci["value"],
                        yerr=[[100 * (ci["value"] - ci["lo"])], [100 * (ci["hi"] - ci["value"])]],
                        fmt=fams.get(r["method"], "x"), ms=6, capsize=3, color=colors[i % len(colors)],
                        label=f"{r['label']} ({100 * ci['value']:+.2f} %)")
        ax.axhline(0, color="gray", ls="--", lw=1)
        cis = [r["texts"][t]["degradation_ci"] for r in result["rows"] if r["texts"][t].get("degradation_ci")]
        if max((c["hi"] for c in cis), default=0) > 1:   # > +100 %: a log axis keeps small ones readable
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylim(bottom=min([-1.0] + [150 * c["lo"] for c in cis]))
        ax.set_xlabel("effective bits per weight (incl. metadata)")
        ax.set_ylabel("perplexity degradation vs float, % (95 % CI)")
        ax.set_title(f"{result['model_name']}: {t} ({result['texts'][t]['windows']} windows of "
                     f"{result['window']}), group {result['group_size']}", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json(result: dict, out_dir, stem: str = "quality") -> pathlib.Path:
    """``<out_dir>/<stem>.json``, replaced atomically (also what a running bench rewrites per row)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jp = out_dir / f"{stem}.json"
    tmp = jp.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(jp)
    return jp


def write(result: dict, out_dir, stem: str = "quality") -> tuple[pathlib.Path, pathlib.Path]:
    jp = write_json(result, out_dir, stem)
    return jp, plot(result, pathlib.Path(out_dir) / f"{stem}.png")
