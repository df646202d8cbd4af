"""Formal proof (Yosys sat, k-induction) that hw.framing.FrameDecoder resynchronises: from any
reachable state, a delimiter and a valid frame yield exactly that frame and an OK verdict
(verif/framing_formal.py). The exhaustive simulation over short sequences is in
tests/hw/test_framing.py."""

import pytest

from bitmix.errors import BitmixError
from verif.framing_formal import prove_resync


def test_resync_proof_minimal_frame():
    res = prove_resync((0x12, 0x34, b""))
    print(f"proved at induction length {res['length']}")
    assert res["length"] <= 16


@pytest.mark.slow
def test_resync_proof_frame_with_zero_and_ff_payload():
    assert prove_resync((0x01, 0x02, b"\0\x01\xff"))["length"] <= 20


def test_resync_proof_fails_on_a_wrong_expectation():
    """The proof is not vacuous: expecting a wrong first byte yields a counterexample."""
    with pytest.raises(BitmixError, match="proof failed"):
        prove_resync((0x12, 0x34, b""), wrong_expectation=True)
