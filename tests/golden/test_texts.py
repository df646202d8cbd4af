"""Evaluation texts: deterministic, other domains than the calibration text, missing sources named."""

import pytest

from bitmix.errors import BitmixError
from golden import texts
from golden.data import reference_corpus


def test_docstrings_are_deterministic_and_not_the_calibration_text():
    raw, desc = texts.eval_text("docstrings")
    assert raw == texts._docstrings()[0] and len(raw) > 100_000 and "23 standard-library modules" in desc
    train = reference_corpus()[0]
    assert raw[1000:1200] not in train and b"Command-line parsing library" in raw


def test_licenses(monkeypatch, tmp_path):
    if texts.LICENSE_DIR.is_dir():
        raw, desc = texts.eval_text("licenses")
        assert b"GNU GENERAL PUBLIC LICENSE" in raw and b"Apache License" in raw
    monkeypatch.setattr(texts, "LICENSE_DIR", tmp_path / "none")
    with pytest.raises(BitmixError, match="none: not found"):
        texts._licenses()


def test_unknown_text_is_named():
    with pytest.raises(BitmixError, match="unknown evaluation text 'wiki'"):
        texts.eval_text("wiki")
