"""`grader check --time-limit` as a student runs it, on a hand-in far too heavy for the limit.

tests/files/regression/cnn_heavy.ipynb (written by make_cnn_heavy.py there) trains nine CNNs on all
60,000 rows, 52 epochs in all; one epoch of its final model takes about 20 s on the 2-core development
machine, so training everything would take well over ten minutes. The real CLI in a subprocess (real
kernel, real retrain child) must stop within the limit, say in the terminal and in the report what it
cut, show a bar for the model it trained, and fail no rule for what it could not train.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time

import pytest

from tests.builders import FILES, ROOT

HAND_IN = FILES / "regression" / "cnn_heavy.ipynb"
LIMIT_S = 60
# What may sit outside LIMIT_S or past it. Measured with --time-limit 60 on the 2-core machine: 54.3 and
# 55.6 s wall (the check's own clock, pipeline's total_s + report_s: 52.8 and 54.0 s); with two busy
# loops on both cores, 61.6 s wall (59.1 s on the check's clock).
#   * before the check's clock starts: the interpreter, the grader's imports and reading the notebook
#     (about 1.5 s; the parent never imports TensorFlow);
#   * the retrain child's start-up (TensorFlow import, data set, row index), which its budget does not
#     count (grader/retrain/child.py starts the clock when the child is ready): the retrain took 7-8 s
#     more than its budget on the quiet machine, 12.7 s under the busy loops. The 15 s
#     report_reserve_s absorbed it here, not on a machine loaded enough to make TensorFlow's import
#     several times slower (README, 'Limits and what was measured': a 9 s capture took 32 s at load 7);
#   * the step chunk running at the deadline (about 1.5 s for this model; the parent kills the child
#     GRACE_S = 5 s after its budget at the latest), then the report and the interpreter's exit.
# 45 s covers a child start-up several times the loaded one; a check that ignored the limit takes
# about 180 s (the default bound) or, without any, over ten minutes.
MARGIN_S = 45

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


def test_a_heavy_cnn_hand_in_is_checked_within_the_time_limit(tmp_path):
    out, result_json = tmp_path / "report", tmp_path / "result.json"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader", "check", str(HAND_IN), "--time-limit", str(LIMIT_S),
                           "--no-pdf", "--out", str(out), "--json", str(result_json)],
                          capture_output=True, text=True, cwd=ROOT, timeout=LIMIT_S + 600)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # 1 would be a failing error rule
    result = json.loads(result_json.read_text(encoding="utf-8"))
    timings = result["meta"]["timings"]
    print(f"grader check --time-limit {LIMIT_S}: {wall:.1f} s wall; {timings}")

    # (a) Within the limit plus the margin above.
    assert wall <= LIMIT_S + MARGIN_S, (wall, timings)
    runs = {run["run_id"]: run for run in result["runs"]}
    final = next(run for run in runs.values() if run["is_final"])
    assert len(runs) == 9 and all(run["status"] in ("ok", "budget") for run in runs.values())
    assert final["status"] == "budget" and final["epochs_run"] < final["epochs_requested"] == 10  # really cut

    # (b) The terminal names every cut model and shows the final model's bar moving.
    cuts = result["meta"]["budget_cuts"]
    assert "Recortado por el presupuesto" in proc.stdout
    cut = [run for run in runs.values() if run["status"] == "budget"]
    assert len(cuts) == len(cut) + 1 and "no cuenta como fallo" in cuts[-1]
    for run in cut:
        line = next(c for c in cuts if c.startswith(f"m{run['model_id']} · "))
        assert f"    - {line}\n" in proc.stdout
        assert ("sin entrenar" if not run["epochs_run"] else f"{run['epochs_run']} de {run['epochs_requested']} épocas") in line
    unverified = sum(v["max_points"] for v in result["rules"] if v["status"] == "skip" and v["max_points"] > 0)
    assert unverified and f"{unverified:g} punto(s) de la nota son de comprobaciones omitidas" in proc.stdout
    bar = re.escape(f"Entrenando m{final['model_id']} · red final")
    shown = [float(n) for n in re.findall(bar + r": +\d+%\|[^|]*\| (\d+\.\d)/10 épocas", proc.stderr)]
    assert shown and max(shown) > 0, proc.stderr[-2000:]

    # (c) The report says what was cut, each model as in the terminal.
    page = html.unescape((out / "cnn_heavy.html").read_text(encoding="utf-8"))
    assert "Recortado por el presupuesto" in page and page.count("fuera de presupuesto") == len(cut)
    assert all(line in page for line in cuts)

    # (d) Nothing fails for the budget: what the cut left unverified is skipped, saying why.
    verdicts = {v["id"]: v for v in result["rules"]}
    assert not [v["id"] for v in verdicts.values() if v["status"] == "fail"]
    assert verdicts["final_val_accuracy"]["status"] == "skip"
    assert "se agotó el tiempo de reentrenamiento" in verdicts["final_val_accuracy"]["message"]
    assert verdicts["reported_vs_reproduced"]["status"] == "skip"
    assert all(v["message"] for v in verdicts.values() if v["status"] == "skip")
    # What comes from the capture does not wait for training.
    assert {verdicts[r]["status"] for r in ("split_20", "new_model_per_fit", "no_test_tuning", "cells_run")} == {"pass"}
