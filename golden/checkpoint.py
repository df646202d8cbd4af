"""Hugging Face-style model folders: config.json + model.safetensors (or sharded with an index).

Every defect a user can hand us (missing file, truncated download, wrong shapes, NaNs) becomes a
one-line :class:`BitmixError` naming the file and the tensor, because a traceback from deep inside
safetensors or load_state_dict does not tell which of several shards or layers is broken.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import torch

from bitmix.errors import BitmixError
from golden.model import LlamaConfig, LlamaForCausalLM

REFERENCE_MODEL_DIR = pathlib.Path(__file__).resolve().parent / "reference_model"

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Old HF checkpoints store the RoPE table; it is recomputed, so it is skipped.
_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)


def _folder(folder) -> pathlib.Path:
    p = pathlib.Path(folder)
    if not p.is_dir():
        raise BitmixError(f"{p}: model folder not found" if not p.exists()
                          else f"{p}: not a folder (expected config.json + model.safetensors)")
    return p


def read_config(folder) -> LlamaConfig:
    """Parse and validate folder/config.json."""
    path = _folder(folder) / "config.json"
    if not path.is_file():
        raise BitmixError(f"{path}: config.json not found")
    return LlamaConfig.from_dict(read_json(path), source=str(path))


def read_json(path: pathlib.Path):
    """Parsed JSON file; a malformed one is a one-line error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BitmixError(f"{path}: invalid JSON ({exc})") from None


def _weight_files(folder: pathlib.Path) -> dict[str, list[str] | None]:
    """file -> tensor names it must hold per the index (None: whatever the single file holds)."""
    single, index = folder / SINGLE_FILE, folder / INDEX_FILE
    if index.is_file():
        try:
            wm = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise BitmixError(f"{index}: not a valid safetensors index ({exc!r})") from None
        files: dict[str, list[str]] = {}
        for name, fname in wm.items():
            files.setdefault(fname, []).append(name)
        return files
    if single.is_file():
        return {SINGLE_FILE: None}
    raise BitmixError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE} found")


def _expected_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory even for a 7B config
        return {k: tuple(v.shape) for k, v in LlamaForCausalLM(cfg).state_dict().items()}


def load_model(folder, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    """Build the model from config.json and fill it from the safetensors file(s), validated."""
    from safetensors import SafetensorError, safe_open

    folder = _folder(folder)
    cfg = read_config(folder)
    expected = _expected_shapes(cfg)
    tensors: dict[str, torch.Tensor] = {}
    where: dict[str, pathlib.Path] = {}
    for fname, names in _weight_files(folder).items():
        path = folder / fname
        if not path.is_file():
            raise BitmixError(f"{path}: safetensors file not found (listed in {INDEX_FILE})")
        try:
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
                for name in names or []:
                    if name not in keys:
                        raise BitmixError(f"{path}: tensor {name} listed in {INDEX_FILE} "
                                          "is not in this file")
                for name in keys:
                    if name.endswith(_IGNORED_SUFFIXES):
                        continue
                    if name in tensors:
                        raise BitmixError(f"{path}: tensor {name} also appears in {where[name]}")
                    t = f.get_tensor(name)
                    where[name] = path
                    if not t.is_floating_point():
                        raise BitmixError(f"{path}: tensor {name} has dtype {t.dtype}, "
                                          "expected float")
                    if not torch.isfinite(t).all():
                        bad = (~torch.isfinite(t)).sum().item()
                        raise BitmixError(f"{path}: tensor {name} contains {bad} NaN/Inf "
                                          "value(s)")
                    tensors[name] = t.to(dtype)  # convert now: peak memory ~ one copy
        except BitmixError:
            raise
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            msg = " ".join(str(exc).split())
            raise BitmixError(f"{path}: corrupt or truncated safetensors file ({msg})") from None
    if cfg.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)  # HF omits it when tied; if present it is a copy
        expected.pop("lm_head.weight", None)
    for name, shape in expected.items():
        if name not in tensors:
            raise BitmixError(f"{folder}: tensor {name} missing from the safetensors file(s)")
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise BitmixError(f"{where[name]}: tensor {name} has shape {list(t.shape)}, "
                              f"config.json implies {list(shape)}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        more = f" (+{len(extra) - 1} more)" if len(extra) > 1 else ""
        raise BitmixError(f"{where[extra[0]]}: unexpected tensor {extra[0]}{more} "
                          "for a LlamaForCausalLM with this config.json")
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model.load_state_dict(tensors, strict=False, assign=True)
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


def save_model(model: LlamaForCausalLM, folder) -> pathlib.Path:
    """Write config.json + model.safetensors (float32) so a reader never sees a half-written pair.

    A new folder is written in a temporary sibling and renamed into place; into an existing folder
    the two files are staged in a temporary subfolder and renamed over the old ones, leaving any
    other files (e.g. a quantizer's extras) alone.
    """
    from safetensors.torch import save_file

    folder = pathlib.Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to(torch.float32).contiguous().cpu()
          for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    exists = folder.exists()
    if exists and not folder.is_dir():
        raise BitmixError(f"{folder}: exists and is not a folder")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-",
                                        dir=folder if exists else folder.parent))
    try:
        save_file(sd, str(tmp / SINGLE_FILE), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n",
                                         encoding="utf-8")
        for f in (SINGLE_FILE, "config.json"):
            os.chmod(tmp / f, 0o644)
        if exists:
            stale_index = folder / INDEX_FILE
            os.replace(tmp / SINGLE_FILE, folder / SINGLE_FILE)
            os.replace(tmp / "config.json", folder / "config.json")
            if stale_index.exists():  # an index would take precedence over the new single file
                stale_index.unlink()
        else:
            os.chmod(tmp, 0o755)
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
