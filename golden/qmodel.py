"""Quantized-model folders: what `bitmix quantize` writes and the hardware flow reads.

A folder holds

* ``config.json`` + ``model.safetensors``: the model with every quantized linear replaced by its
  DEQUANTIZED float weights (so any float tool, e.g. ``bitmix eval --model OUT``, just works);
* ``quantized.safetensors``: per quantized linear ``<name>.<field>`` tensors, exactly what the
  hardware needs —
  grouped formats (RTN/GPTQ/MX): ``codes`` (uint8 [N, K]), ``fmt_ids`` (uint8 [N, K/G]),
  ``u`` (int64 [N, K/G]: an S-bit integer, or for MX a power of two up to 2^62),
  ``row_scale`` (float32 [N]: the 32 bits the effective bits charge) and, for INT-asym,
  ``zero`` (uint8); both are checked against the storage contract of golden/quant.py
  (:meth:`QuantizedWeight.validate`) when written and when read;
  BCQ: ``planes`` (uint8 [q, N, ceil(K/8)], bit j of byte b = input 8b + j, 1 = +1),
  ``apot_exp`` (int16 [q, R, C, T]) and ``apot_sign`` (int8, −1/0/+1);
* ``manifest.json``: method, format set and its hash (golden.formats), group size, per-layer
  widths, layouts and effective bits per weight including all metadata, timings.

The folder is written in a temporary sibling and renamed into place, so a failure never leaves
a partial folder behind.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import torch

from bitmix import __version__
from bitmix.errors import BitmixError
from golden.bcq import BCQWeight
from golden.bitalloc import weighted_bits
from golden.checkpoint import read_json
from golden.formats import format_table_hash, get_format_set
from golden.quant import QuantizedWeight

__all__ = ["save_quantized", "load_quantized", "layer_tensors", "layer_entry", "QUANTIZED_FILE",
           "MANIFEST_FILE", "MANIFEST_FORMAT"]

QUANTIZED_FILE = "quantized.safetensors"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "bitmix-quantized/2"     # /2: u int64, row_scale float32, scale_kind


def layer_tensors(res, name: str = "weight") -> dict[str, torch.Tensor]:
    """The tensors stored for one quantized linear; a grouped layer is validated first."""
    if isinstance(res, BCQWeight):
        return res.tensors()
    res.validate(f"layer {name}")
    out = {"codes": res.codes.to(torch.uint8), "fmt_ids": res.fmt_ids.to(torch.uint8),
           "u": res.u.to(torch.int64), "row_scale": res.row_scale.to(torch.float32)}
    if res.zero is not None:
        out["zero"] = res.zero.to(torch.uint8)
    return out


def layer_entry(res, bits: int | None = None) -> dict:
    """Manifest entry of one quantized linear."""
    n, k = res.shape
    if isinstance(res, BCQWeight):
        return {"kind": "bcq", "shape": [n, k], "bits": res.bits, "layout": res.layout,
                "group_size": res.group_size, "apot_terms": res.apot_terms, "method": res.method,
                "effective_bits": res.effective_bits()}
    fs = res.format_set
    return {"kind": "grouped", "shape": [n, k], "bits": fs.bits, "format_set": fs.name,
            "format_set_hash": fs.hash, "group_size": res.group_size, "scale_bits": res.scale_bits,
            "zero_point": res.zero is not None, "method": res.method, "scale_kind": res.scale_kind,
            "effective_bits": res.effective_bits()}


def save_quantized(model, results: dict, out, manifest: dict, tokenizer=None) -> pathlib.Path:
    """Write the folder atomically; ``model`` already holds the dequantized weights.

    ``tokenizer`` (golden.lm) writes its tokenizer.json into the folder when it has one."""
    from safetensors.torch import save_file

    from golden.checkpoint import save_model

    out = pathlib.Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file())):
        raise BitmixError(f"{out}: exists and is not a bitmix quantized-model folder; refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old = None
    try:
        save_model(model, tmp)
        if tokenizer is not None:
            tokenizer.save(tmp)
        tensors = {}
        layers = {}
        for name, res in results.items():
            for field, t in layer_tensors(res, name).items():
                tensors[f"{name}.{field}"] = t.contiguous()
            layers[name] = layer_entry(res)
        save_file(tensors, str(tmp / QUANTIZED_FILE), metadata={"format": MANIFEST_FORMAT})
        os.chmod(tmp / QUANTIZED_FILE, 0o644)
        total = sum(e["shape"][0] * e["shape"][1] for e in layers.values())
        eff = weighted_bits(results) if results else 0.0
        full = {"format": MANIFEST_FORMAT, "bitmix_version": __version__,
                "format_table_hash": format_table_hash(), **manifest,
                "quantized_params": total, "effective_bits": eff, "layers": layers}
        (tmp / MANIFEST_FILE).write_text(json.dumps(full, indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)
    return out


def _need(t: dict, key: str, path, shape=None):
    if key not in t:
        raise BitmixError(f"{path}: tensor {key} missing")
    if shape is not None and tuple(t[key].shape) != tuple(shape):
        raise BitmixError(f"{path}: tensor {key} has shape {list(t[key].shape)}, "
                          f"manifest implies {list(shape)}")
    return t[key]


def load_quantized(folder, load_float: bool = True):
    """``(model | None, {name: QuantizedWeight | BCQWeight}, manifest)``, validated against the manifest."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = pathlib.Path(folder)
    mpath, qpath = folder / MANIFEST_FILE, folder / QUANTIZED_FILE
    if not mpath.is_file():
        raise BitmixError(f"{mpath}: not found (not a `bitmix quantize` output folder)")
    manifest = read_json(mpath)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise BitmixError(f"{mpath}: field format is {got!r}, expected {MANIFEST_FORMAT!r}")
    if not qpath.is_file():
        raise BitmixError(f"{qpath}: not found")
    try:
        t = load_file(str(qpath))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise BitmixError(f"{qpath}: corrupt or truncated safetensors file ({msg})") from None
    results = {}
    for name, e in manifest.get("layers", {}).items():
        try:
            n, k = e["shape"]
            kind = e["kind"]
            if kind == "bcq":
                sub = {f: t[f"{name}.{f}"] for f in ("planes", "apot_exp", "apot_sign", "alpha")
                       if f"{name}.{f}" in t}
                _need(t, f"{name}.planes", qpath, (e["bits"], n, (k + 7) // 8))
                res = BCQWeight.from_tensors(sub, (n, k), e["layout"], e["group_size"],
                                             e.get("method", "bcq"))
            elif kind == "grouped":
                fs = get_format_set(e["format_set"])
                if fs.hash != e.get("format_set_hash"):
                    raise BitmixError(f"{mpath}: layer {name}: format_set_hash {e.get('format_set_hash')} "
                                      f"does not match {fs.name}'s {fs.hash} in this bitmix "
                                      "(formats changed)")
                G = e["group_size"]
                codes = _need(t, f"{name}.codes", qpath, (n, k)).to(torch.int64)
                fmt_ids = _need(t, f"{name}.fmt_ids", qpath, (n, k // G)).to(torch.int64)
                u = _need(t, f"{name}.u", qpath, (n, k // G))
                rs = _need(t, f"{name}.row_scale", qpath, (n,))
                if rs.dtype != torch.float32 or u.dtype != torch.int64:
                    raise BitmixError(f"{qpath}: layer {name}: row_scale/u stored as {rs.dtype}/"
                                      f"{t[f'{name}.u'].dtype}, expected float32/int64")
                rs = rs.to(torch.float64)
                zero = (_need(t, f"{name}.zero", qpath, (n, k // G)).to(torch.int64)
                        if e.get("zero_point") else None)
                res = QuantizedWeight(codes, fmt_ids, u, rs, fs, G, e["scale_bits"], zero=zero,
                                      method=e.get("method", "rtn"), scale_kind=e["scale_kind"])
                res.validate(f"{qpath}: layer {name}")
            else:
                raise BitmixError(f"{mpath}: layer {name}: unknown kind {kind!r}")
        except KeyError as exc:
            raise BitmixError(f"{mpath}: layer {name}: missing field {exc}") from None
        results[name] = res
    model = None
    if load_float:
        from golden.checkpoint import load_model
        model = load_model(folder)
    return model, results, manifest
