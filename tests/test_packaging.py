"""The wheel ships the templates and the rubric: an installed grader (not a checkout) finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.builders import ROOT


def test_wheel_contains_templates_and_rubric_and_they_resolve_when_installed(tmp_path: Path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("grader-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("grader/templates/report.html", "grader/templates/summary.html", "grader/templates/report.css",
                 "grader/templates/similarity.html", "grader/rubrics/trabajo2.yaml",
                 "grader/rubrics/trabajo2_plantilla.ipynb",  # the rubric names it: read_rubric() below needs it
                 "grader/capture/kernel/probe.py", "grader/capture/kernel/launcher.py", "grader/cli.py"):
        assert name in names, name

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import grader.resources as r, grader.rubric as rb;"
        "assert r.templates_dir().joinpath('report.html').is_file(), r.templates_dir();"
        "print(r.templates_dir()); print(rb.read_rubric().title)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert str(site) in run.stdout and "Trabajo 2" in run.stdout
