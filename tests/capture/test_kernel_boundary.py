"""grader/capture/kernel/ is the student's side of the trust boundary: it imports nothing of grader."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from tests.builders import ROOT

KERNEL = ROOT / "grader" / "capture" / "kernel"


def test_kernel_modules_import_nothing_of_grader() -> None:
    files = sorted(KERNEL.glob("*.py"))
    assert {f.name for f in files} >= {"probe.py", "names.py", "legacy.py", "steps.py", "launcher.py"}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] == "grader"]
            elif isinstance(node, ast.ImportFrom):
                bad = [node.module] if node.level == 0 and (node.module or "").split(".")[0] == "grader" else []
            else:
                continue
            assert not bad, f"{path.name}:{node.lineno} imports {bad}"


def test_probe_copies_import_alone_without_the_grader_package(tmp_path: Path) -> None:
    """As in the kernel: the three copies side by side are the only grader code on the path."""
    from grader.capture.kernel import PROBE_FILES

    for name, target in (*PROBE_FILES.items(), ("launcher.py", "launcher.py")):
        shutil.copyfile(KERNEL / name, tmp_path / target)
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); sys.modules['grader'] = None\n"  # no grader
            "import grader_probe, launcher; print('ok', grader_probe.legacy.__name__, grader_probe.arrays.__name__)")
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok", "grader_probe_legacy", "grader_probe_arrays"]
