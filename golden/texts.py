"""Offline evaluation texts from sources that share neither domain nor text with the calibration text.

Calibration always uses the train split of CPython's ``pydoc_data.topics`` (golden/data.py, the
language reference's help pages). The evaluation texts:

* ``heldout`` — the held-out split of the same corpus (whole topics never used for training or
  calibration, but the same domain): the reference model's text;
* ``licenses`` — the software licence texts in ``/usr/share/common-licenses`` (Debian and
  derivatives ship them; about 241 KB: Apache-2.0, Artistic, BSD, CC0-1.0, GFDL-1.2/1.3,
  GPL-1/2/3, LGPL-2/2.1/3, MPL-1.1/2.0), regular files only (the GPL/LGPL/GFDL links are
  duplicates), sorted by name, separated by a blank line: legal English;
* ``docstrings`` — the docstrings of a fixed list of standard-library modules
  (:data:`DOC_MODULES`: data formats, networking, text and numeric utilities, none of the
  language reference), the module's docstring and then its public classes, their public
  methods and its functions in sorted order, separated by a blank line: API prose.

Each text's size and source are reported by :func:`eval_text`; a missing source is a one-line
error naming it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pathlib

from bitmix.errors import BitmixError

__all__ = ["TEXTS", "DOC_MODULES", "LICENSE_DIR", "eval_text"]

LICENSE_DIR = pathlib.Path("/usr/share/common-licenses")
DOC_MODULES = ("argparse", "calendar", "csv", "decimal", "email.message", "fractions", "ftplib",
               "gzip", "heapq", "http.client", "imaplib", "ipaddress", "json", "logging", "mailbox",
               "smtplib", "statistics", "tarfile", "textwrap", "urllib.parse", "urllib.request",
               "uuid", "zipfile")
TEXTS = ("heldout", "licenses", "docstrings")


def _licenses() -> tuple[bytes, str]:
    if not LICENSE_DIR.is_dir():
        raise BitmixError(f"{LICENSE_DIR}: not found (the 'licenses' text needs Debian's base-files)")
    files = sorted(p for p in LICENSE_DIR.iterdir() if p.is_file() and not p.is_symlink())
    if not files:
        raise BitmixError(f"{LICENSE_DIR}: no licence files")
    body = "\n\n".join(p.read_text(encoding="utf-8", errors="replace").strip() for p in files) + "\n"
    return body.encode("utf-8"), f"{len(files)} licence texts in {LICENSE_DIR}"


def _doc_parts(mod) -> list[str]:
    parts = [inspect.getdoc(mod) or ""]
    for name in sorted(vars(mod)):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name)
        if getattr(obj, "__module__", None) != mod.__name__:
            continue                                   # imported names belong to other modules
        if inspect.isclass(obj):
            parts.append(inspect.getdoc(obj) or "")
            for m in sorted(vars(obj)):
                f = vars(obj)[m]
                if not m.startswith("_") and inspect.isfunction(f) and f.__doc__:
                    parts.append(inspect.cleandoc(f.__doc__))
        elif inspect.isfunction(obj) and obj.__doc__:
            parts.append(inspect.cleandoc(obj.__doc__))
    return [p.strip() for p in parts if p and p.strip()]


def _docstrings() -> tuple[bytes, str]:
    parts = []
    for name in DOC_MODULES:
        parts.extend(_doc_parts(importlib.import_module(name)))
    return ("\n\n".join(parts) + "\n").encode("utf-8"), \
        f"docstrings of {len(DOC_MODULES)} standard-library modules"


@functools.cache
def eval_text(name: str) -> tuple[bytes, str]:
    """``(UTF-8 bytes, description)`` of the evaluation text ``name`` (one of :data:`TEXTS`)."""
    if name == "heldout":
        from golden.data import reference_corpus
        return reference_corpus()[1], "reference held-out split (pydoc_data.topics)"
    if name == "licenses":
        return _licenses()
    if name == "docstrings":
        return _docstrings()
    raise BitmixError(f"unknown evaluation text {name!r}; known: {', '.join(TEXTS)}")
