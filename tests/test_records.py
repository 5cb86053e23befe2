"""Fixed runs on tfds mock data give the records the code wrote before (`records.py`): every
experiment with 50 steps, a 4-member sweep, a halving and a PBT search, a resume and `evaluate`.
Bit for bit on the CPU that wrote them; to `records.TOLERANCE` on another."""

import json
import math

import pytest
import records


def compare(got, want, exact: bool, where: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys differ"
        for k in want:
            compare(got[k], want[k], exact, f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            compare(g, w, exact, f"{where}[{i}]")
    elif isinstance(want, float) and not exact:
        assert math.isclose(got, want, rel_tol=records.TOLERANCE, abs_tol=records.TOLERANCE) or (
            math.isnan(got) and math.isnan(want)
        ), f"{where}: {got} != {want}"
    else:
        same = got == want or (isinstance(want, float) and math.isnan(want) and math.isnan(got))
        assert same, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in records.CASES],
)
def test_mock_runs_give_the_recorded_numbers(case, tmp_path):
    saved = json.loads(records.path(case).read_text())
    got = records.run(case, tmp_path)
    compare(got, saved["records"], exact=saved["cpu"] == records.cpu_key())


def test_compare_catches_a_changed_number():
    want = {"runs": [{"test_loss": 0.25, "epochs": [1, 2]}]}
    compare(want, want, exact=True)
    with pytest.raises(AssertionError, match="test_loss"):
        compare({"runs": [{"test_loss": 0.2500001, "epochs": [1, 2]}]}, want, exact=True)
    with pytest.raises(AssertionError, match="test_loss"):
        compare({"runs": [{"test_loss": 0.26, "epochs": [1, 2]}]}, want, exact=False)
