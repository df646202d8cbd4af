"""Weight squared error of RTN: the former row-scale rule vs the per-row choice (README, "Row scale").

Run from the repository root: ``python docs/measurements/row_scale.py`` (needs the MiniLM extra).
"""

import torch

from golden import minilm
from golden.checkpoint import REFERENCE_MODEL_DIR, load_model
from golden.formats import get_format_set
from golden.model import linear_layers
from golden.quant import default_scale_bits, fp32_scale, quantize_rtn


def compare(fs, layers, G=128):
    e_old = e_new = 0.0
    switched = rows = 0
    umax = (1 << default_scale_bits(fs)) - 1
    for W in layers:
        W = W.double()
        N = W.shape[0]
        absmax = W.reshape(N, -1, G).abs().amax(-1).amax(-1)
        old_sigma = fp32_scale(absmax / min(f.max_abs for f in fs.formats) / umax)
        q_old = quantize_rtn(W, fs, G, row_scale=old_sigma)
        q = quantize_rtn(W, fs, G)
        e_old += float(((q_old.dequantize() - W) ** 2).sum())
        e_new += float(((q.dequantize() - W) ** 2).sum())
        switched += int((q.row_scale != old_sigma).sum())
        rows += N
    return e_new / e_old - 1, switched / rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    ref = [lin.weight.data for lin in linear_layers(load_model(REFERENCE_MODEL_DIR)).values()]
    m, _ = minilm.load_minilm()
    mini = [mod.weight.data for n, mod in m.named_modules()
            if isinstance(mod, torch.nn.Linear) and "encoder" in n]
    for fsn in ("bitmod3", "ant3", "bitmod4", "ant4"):
        for name, layers in (("reference", ref), ("MiniLM", mini)):
            d, sw = compare(get_format_set(fsn), layers)
            print(f"| {fsn} | {name} | {d * 100:+.2f} % | {sw:.0%} |")
