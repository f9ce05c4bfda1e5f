"""Every sample hand-in in submissions/ gets the verdicts its name promises, through the whole
pipeline: real kernel, real retrain (full budget), real rules. Table-driven from expected.yaml.

Slow (grades all samples: minutes); CI runs it with `-m slow` after the default suite.
"""

from __future__ import annotations

import json

import pytest
import yaml

from grader.batch import grade_batch
from grader.options import GradeOptions
from tests.builders import ROOT

EXPECTED = yaml.safe_load((ROOT / "submissions" / "expected.yaml").read_text(encoding="utf-8"))

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("samples")
    summary = grade_batch(ROOT / "submissions", GradeOptions(out_dir=out, pdf=False), jobs=2, progress=False)
    assert not summary.failed, f"grader errors on {summary.failed}"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    return {r["student"]: r for r in results}


def test_every_sample_was_graded(graded):
    assert set(graded) == set(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_sample_gets_its_expected_verdicts(graded, student):
    statuses = {r["id"]: r["status"] for r in graded[student]["rules"]}
    expected = EXPECTED[student]["rules"]
    wrong = {rule: (want, statuses.get(rule)) for rule, want in expected.items() if statuses.get(rule) != want}
    assert not wrong, f"{student}: (expected, got) {wrong}"


def test_correct_sample_reproduces_about_90_percent(graded):
    final = graded["correct_full"]["final"]
    assert final["val_accuracy"] >= 0.885
    assert 0.8 < final["test_accuracy"] < 0.95
    assert graded["correct_full"]["score"] == graded["correct_full"]["max_score"]
