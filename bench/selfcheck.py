"""Self-check time of a full hand-in, as a student runs it: `grader check FILE` (quick budget).

Prints, from one run each: the wall time of a cold check (empty retrain cache), of a warm re-check
(same cache), and the share of capture / retrain in the cold one, against the 120 s target.
Usage: .venv/bin/python bench/selfcheck.py [NOTEBOOK]   (default: submissions/correct_full.ipynb)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 120.0
ROOT = Path(__file__).resolve().parent.parent


def check(notebook: Path, out: Path, cache: Path) -> tuple[float, dict]:
    result = out / "result.json"
    cmd = [sys.executable, "-m", "grader", "check", str(notebook), "--out", str(out),
           "--cache-dir", str(cache), "--json", str(result)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"grader check failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(result.read_text())


def main() -> None:
    notebook = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "submissions" / "correct_full.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold, result = check(notebook, tmp / "cold", tmp / "cache")
        warm, _ = check(notebook, tmp / "warm", tmp / "cache")
    t = result["meta"]["timings"]
    fits = sum(len(r["fit_indices"]) for r in result["runs"])
    epochs = sum(r["epochs_run"] for r in result["runs"])
    print(f"hand-in: {notebook.name}: {fits} fits, {len(result['runs'])} retrained models, "
          f"{epochs} epochs retrained (quick budget), grade {result['score']:g}/{result['max_score']:g}")
    print(f"cold check: {cold:6.1f} s  (capture {t.get('capture_s', 0):.1f} s, retrain {t.get('retrain_s', 0):.1f} s,"
          f" rest {cold - t.get('capture_s', 0) - t.get('retrain_s', 0):.1f} s)")
    print(f"warm check: {warm:6.1f} s  (retrain cache hits)")
    print(f"cold / target ({TARGET_S:.0f} s): {cold / TARGET_S:.2f}   warm / cold: {warm / cold:.2f}")


if __name__ == "__main__":
    main()
