"""`bitmix bench e2e`: the whole decode on the virtual board, per token and per PMPD policy.

Starts the virtual board (the boards' 14 KB weights region, so the model is streamed per use, or
``--weight-beats`` for a resident model), quantizes the reference model as ``bitmix demo`` does,
puts every linear on the device (``sw_driver.accel``, results checked against golden.intref) and
decodes ``--tokens`` tokens under each policy: uniform high (full precision), uniform low (1 term
per weight) and static (switch after ``--switch-after``). Per generated token: device cycles
(STATUS of every GEMV), link bytes (both directions), and wall time split into host compute (the
model's float work on the host and the golden check), link (writes, descriptor, results, STATUS
frames outside runs) and simulation (each RUN until STATUS says DONE: the simulated engine
computing). Over the whole decode: the fraction of device cycles that are useful lane-terms,
Σ N·K·T/(R·L) over Σ measured cycles (``golden.cycle_model.gemv_ideal_cycles``; target ≥ 0.9).
JSON in ``build/bench/e2e.json`` and a table.

``--method shift-add`` (or ``bcq``) runs the same on the shift-add LUT path: the reference model as
BCQ planes (``bitmix demo --method shift-add``'s quantization) on a virtual board with the LUT path,
uniform low = q - 1 planes, useful cycles = N·K·p/(R·L) (one plane of one word per cycle).
"""

from __future__ import annotations

import json
import pathlib

__all__ = ["register", "run"]


def register(bsub) -> None:
    from bitmix.argtypes import int_in_range

    p = bsub.add_parser("e2e", help="whole decode on the virtual board per policy: cycles, link bytes, "
                                    "wall time split, engine utilization",
                        description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int_in_range("--tokens", 2, 64), default=4,
                   help="generated tokens per policy (default 4)")
    p.add_argument("--switch-after", type=int_in_range("--switch-after", 0), default=None, metavar="n",
                   help="static policy's switch point (default tokens/2)")
    p.add_argument("--prompt", default="The with", help="prompt (default 'The with')")
    p.add_argument("--weight-beats", type=int_in_range("--weight-beats", 1, 1 << 20), default=None,
                   metavar="BEATS", help="virtual board's weights region (default: the boards' 2,048 beats)")
    p.add_argument("--method", choices=("rtn", "shift-add", "bcq"), default="rtn",
                   help="rtn: BitMoD on the bit-serial path (default); shift-add / bcq: BCQ planes on "
                        "the shift-add LUT path (as bitmix demo --method)")
    p.add_argument("--out", default="build/bench", metavar="DIR", help="folder for e2e.json")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from bitmix.cmd_demo import SHIFT_ADD_METHODS, board_values, quantized_reference
    from bitmix.cmd_sim_board import start_board
    from golden.data import encode
    from golden.pmpd import static_schedule
    from sw_driver.accel import Accelerator, accelerate
    from sw_driver.device import Device

    torch.set_num_threads(1)
    T = args.tokens
    n_static = T // 2 if args.switch_after is None else args.switch_after
    policies = {"uniform high": T, "uniform low": 0, f"static n={n_static}": n_static}
    shift_add = args.method in SHIFT_ADD_METHODS
    low = 2 if shift_add else 1                    # 3 planes -> 2; bitmod4's 2 terms -> 1
    board = start_board(board_values(args.method, args.weight_beats), link="bytes")
    try:
        with Device.open(board.device, expect=board.params, progress=False) as dev:
            g = dev.params.gemv
            model, qs = quantized_reference(g, args.method)
            acc = Accelerator(dev)
            placed = accelerate(model, qs, acc, precisions=(0, low))
            prompt = encode(args.prompt)
            result = {"prompt": args.prompt, "tokens": T, "method": args.method, "low": low,
                      "resident": placed["resident"],
                      "model_bytes": placed["model_bytes"], "weights_region_bytes": placed["region_bytes"],
                      "clk_hz": board.clk_hz, "policies": {}}
            for name, n in policies.items():
                result["policies"][name] = _decode(model, acc, prompt, T, static_schedule(n, 0, low))
    finally:
        board.close()
    dec = [t for p in result["policies"].values() for t in p["tokens"]]
    result["utilization"] = sum(t["ideal_cycles"] for t in dec) / sum(t["cycles"] for t in dec)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "e2e.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    for line in table(result):
        print(line)
    print(f"JSON: {out / 'e2e.json'}")
    return 0


def _decode(model, acc, prompt, T, schedule) -> dict:
    """One decode; per generated token (the prefill apart) its counters and its wall time split."""
    from golden.pmpd import generate
    from sw_driver.accel import DecodeSteps

    hook = DecodeSteps(acc, len(prompt))
    d = generate(model, prompt, T, schedule, lambda p: setattr(acc, "precision", p), on_step=hook)
    steps = hook.finish()
    tokens = []
    for st, p in zip(steps[1:], d.precisions[1:], strict=True):
        wall, sim = st["seconds"], st["seconds_run"]
        link = st["seconds_device"] - sim - st["seconds_verify"]
        tokens.append({"precision": p, "cycles": st["cycles"], "ideal_cycles": st["ideal_cycles"],
                       "link_bytes": st["link_bytes"], "gemvs": st["gemvs"], "seconds": wall,
                       "host_s": wall - sim - link, "link_s": link, "simulation_s": sim})
    pre = steps[0]
    return {"precisions": d.precisions, "prefill": {"cycles": pre["cycles"], "link_bytes": pre["link_bytes"],
                                                    "seconds": pre["seconds"]}, "tokens": tokens}


def table(result: dict) -> list[str]:
    """The text table of a ``bench e2e`` result: per policy, the mean per decode token."""
    kind = "resident" if result["resident"] else "streamed"
    if result.get("method", "rtn") != "rtn":
        kind = (f"{result['method']} (BCQ planes on the shift-add LUT path; low = {result['low']} "
                f"planes), {kind}")
    lines = [f"{kind} model ({result['model_bytes']:,} weight bytes, "
             f"region {result['weights_region_bytes']:,} B), {result['tokens']} tokens per policy "
             f"(the first from the prefill), mean per decode token:",
             "| policy | precisions | device cycles | link bytes | wall s | host s | link s | simulation s "
             "| useful lane-terms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, p in result["policies"].items():
        t = p["tokens"]
        n = len(t)

        def mean(k, t=t, n=n):
            return sum(x[k] for x in t) / n
        util = sum(x["ideal_cycles"] for x in t) / sum(x["cycles"] for x in t)
        lines.append(f"| {name} | {' '.join(map(str, p['precisions']))} | {mean('cycles'):,.0f} "
                     f"| {mean('link_bytes'):,.0f} | {mean('seconds'):.2f} | {mean('host_s'):.2f} "
                     f"| {mean('link_s'):.2f} | {mean('simulation_s'):.2f} | {util:.3f} |")
    lines.append(f"useful lane-terms over the whole decode (all policies): {result['utilization']:.3f} "
                 "(target >= 0.9)")
    return lines
