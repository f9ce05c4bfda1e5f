"""The command line as users call it: a real subprocess, real kernel, real retrain."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from tests.builders import tiny_notebook


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True)


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("grader ")
    help_text = run_cli("--help").stdout
    for command in ("grade", "check", "capture", "data"):
        assert command in help_text
    assert "--ci" in run_cli("check", "--help").stdout


def test_missing_path_is_a_clear_usage_error(tmp_path: Path):
    proc = run_cli("check", str(tmp_path / "nope.ipynb"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_bad_rubric_stops_at_once_naming_the_file(tmp_path: Path):
    nb = tmp_path / "a.ipynb"
    nbformat.write(tiny_notebook(16), nb)
    rubric = tmp_path / "broken.yaml"
    rubric.write_text("title: x\nexercises: 3\n", encoding="utf-8")
    proc = run_cli("check", str(nb), "--rubric", str(rubric), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "broken.yaml" in proc.stderr


@pytest.mark.kernel
def test_check_ci_writes_json_junit_and_annotations(tmp_path: Path):
    nb = tmp_path / "alumno.ipynb"
    nbformat.write(tiny_notebook(16), nb)
    out = tmp_path / "report"
    proc = run_cli("check", str(nb), "--ci", "--no-pdf", "--out", str(out), "--json", str(tmp_path / "r.json"))
    # The tiny notebook skips exercises 1-3, so error-severity rules fail: exit code 1.
    assert proc.returncode == 1, proc.stderr
    assert "Nota:" in proc.stdout and "Informe:" in proc.stdout
    assert "::error file=alumno.ipynb" in proc.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    for key in ("student", "score", "max_score", "rules", "runs", "final", "errors"):
        assert key in result
    assert result["student"] == "alumno"
    ids = {r["id"] for r in result["rules"]}
    assert {"split_20", "new_model_per_fit", "no_test_tuning", "final_val_accuracy"} <= ids
    assert result["final"] is not None and 0.0 < result["final"]["val_accuracy"] <= 1.0
    suite = ET.parse(out / "junit.xml").getroot()
    cases = {case.get("name") for case in suite.iter("testcase")}
    assert ids <= cases
    assert (out / "alumno.html").is_file()


def test_kernel_limits_reach_the_worker_unchanged():
    """--cell-timeout/--memory-mb become GradeOptions.limits and survive the batch's job file."""
    from grader.batch import _job_spec
    from grader.cli import _options, build_parser
    from grader.codec import from_data
    from grader.load import Submission
    from grader.options import GradeOptions

    args = build_parser().parse_args(["grade", "x", "--cell-timeout", "5", "--memory-mb", "3000"])
    opts = _options(args, "full")
    assert (opts.limits.cell_timeout_s, opts.limits.memory_mb, opts.limits.total_timeout_s) == (5.0, 3000, 900)
    spec = json.loads(json.dumps(_job_spec(Submission("s", Path("s.ipynb"), "ipynb"), opts, Path("r.json"))))
    # The worker gets the cache folder resolved (OUT/.cache), everything else as given.
    assert from_data(GradeOptions, spec["options"]) == dataclasses.replace(opts, cache_dir=opts.retrain_cache)


def test_quota_and_retrain_limits_reach_the_worker_unchanged():
    """--disk-mb/--inodes (the kernel's work folder) and --retrain-budget/--retrain-memory-mb (the
    trusted retrain child) survive the batch's job file."""
    from grader.batch import _job_spec
    from grader.cli import _options, build_parser
    from grader.codec import from_data
    from grader.load import Submission
    from grader.options import GradeOptions

    args = build_parser().parse_args(["grade", "x", "--disk-mb", "128", "--inodes", "4000", "--retrain-budget",
                                      "30", "--retrain-memory-mb", "4096"])
    opts = _options(args, "quick")
    assert (opts.limits.disk_mb, opts.limits.inodes) == (128, 4000)
    assert (opts.budget.name, opts.budget.time_budget_s, opts.budget.memory_mb) == ("quick", 30.0, 4096)
    spec = json.loads(json.dumps(_job_spec(Submission("s", Path("s.ipynb"), "ipynb"), opts, Path("r.json"))))
    worker = from_data(GradeOptions, spec["options"])
    assert (worker.limits, worker.budget) == (opts.limits, opts.budget)
    default = _options(build_parser().parse_args(["grade", "x"]), "full")
    assert (default.limits.disk_mb, default.budget.memory_mb, default.budget.time_budget_s) == (1024, 6144, 1800)


def test_time_limit_sets_the_quick_checks_bound():
    """`check --time-limit S` becomes Budget.check_s (what bounds the whole quick check); not given, the
    default bound; a negative value is a usage error."""
    from grader.cli import _options, build_parser
    from grader.options import Budget

    parse = build_parser().parse_args
    assert _options(parse(["check", "x", "--time-limit", "60"]), "quick").budget.check_s == 60.0
    assert _options(parse(["check", "x", "--time-limit", "0"]), "quick").budget.check_s == 0.0
    assert _options(parse(["check", "x"]), "quick").budget == Budget(name="quick")
    assert _options(parse(["grade", "x"]), "quick").budget == Budget(name="quick")  # `grade` has no such option
    assert Budget(name="quick", check_s=60).retrain_seconds(10) == 60 - 10 - Budget.report_reserve_s
    proc = run_cli("check", "x.ipynb", "--time-limit", "-5")
    assert proc.returncode == 2 and "--time-limit" in proc.stderr and ">= 0" in proc.stderr
    assert "--time-limit" in run_cli("check", "--help").stdout


def test_quick_checklist_says_how_many_points_the_budget_may_have_left_unverified(capsys, tmp_path):
    from grader.cli import print_checklist
    from grader.report.sample import sample_result

    result = sample_result()
    result.rules = [dataclasses.replace(v, status="skip", points=0.0) if v.id == "ex4_target" else v
                    for v in result.rules]  # the final model was cut: its target could not be checked
    skipped = sum(v.max_points for v in result.rules if v.status == "skip" and v.max_points > 0)
    assert skipped == 1.5
    result.meta.update(budget="quick", budget_cuts=["m9 · red final: 3 de 20 épocas, se acabó el tiempo"])
    print_checklist(result, tmp_path)
    assert f"{skipped:g} punto(s) de la nota son de comprobaciones omitidas" in capsys.readouterr().out
    result.meta.update(budget="full")  # the full budget cuts nothing a student could re-run: no such line
    print_checklist(result, tmp_path)
    assert "comprobaciones omitidas" not in capsys.readouterr().out
