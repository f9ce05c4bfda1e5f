"""Benchmark: one whole hand-in as a user waits for it, against re-running the notebook and the floor.

From ONE run (the machine is shared; ratios taken minutes apart in one process stay meaningful):
  grader      `grader grade HANDIN` with the full budget and an empty retrain cache (a fresh CLI
              process: worker, capture, retrain, rules, report, summary and exports);
  re-execution the same notebook executed top to bottom with nbclient, as nbgrader / otter do: every
              `fit` for real with the student's own epochs;
  floor       the FLOPs of every epoch the grader retrained (forward, backward and update of the
              training rows, forward of the validation rows, the final model's test pass) over the
              sgemm rate measured in this run (best of before and after). The update counts the
              element-wise FLOPs per weight and step of the optimizer (UPDATE_FLOPS).
The last two lines are read by other tools: keep them exactly `ratio grader/floor = X.XX` and
`ratio grader/reexecution = X.XX`.

    .venv/bin/python bench/handin.py [NOTEBOOK]   (default: submissions/correct_full.ipynb)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from retrain import sgemm_gflops  # noqa: E402  bench/retrain.py: the same yardstick as the per-model bench

from grader.capture.trace import Trace  # noqa: E402
from grader.retrain.allowlist import rebuild_model  # noqa: E402

VAL_SHARE = 0.2  # the mandated split: what the grader trains on and validates on
TEST_ROWS = 10_000
DEFAULT_BATCH = 32  # Keras' batch size when fit() names none
# Element-wise FLOPs per weight and step of an optimizer's update, as Keras writes it (Adam: m, v, the
# step with sqrt and divide; SGD without momentum: multiply and subtract); others counted as Adam.
UPDATE_FLOPS = {"SGD": 2, "Adam": 12, "RMSprop": 8, "Adagrad": 6}


def grade(notebook: Path, out: Path) -> tuple[float, dict]:
    """Wall time of `grader grade` (full budget, empty cache) and the hand-in's result."""
    cmd = [sys.executable, "-m", "grader", "grade", str(notebook), "--out", str(out), "--budget", "full",
           "--cache-dir", str(out / "cache"), "--jobs", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    results = sorted((out / "results").glob("*.json"))
    if proc.returncode != 0 or not results:
        sys.exit(f"grader grade failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads(results[0].read_text(encoding="utf-8"))


def reexecute(notebook: Path, workdir: Path) -> tuple[float, str]:
    """Wall time of executing the notebook as other graders do (kernel start included)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    errors = [o.get("ename", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    return wall, ", ".join(errors) or "no errors"


def update_flops(model, optimizer: dict) -> int:
    """FLOPs of one optimizer step over all the model's weights."""
    name = optimizer.get("class_name", "Adam")
    per_weight = UPDATE_FLOPS.get(name, UPDATE_FLOPS["Adam"])
    if name == "SGD" and (optimizer.get("config") or {}).get("momentum"):
        per_weight = 4
    return per_weight * sum(int(w.numpy().size) for w in model.trainable_weights)


def macs_per_row(model) -> int:
    """Multiply-adds of one sample's forward pass through the Dense and convolution layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
            positions = 1
            for size in layer.output.shape[1:-1]:
                positions *= int(size)
            total += positions * int(layer.kernel.numpy().size)
    return total


def retrained_gflop(trace: Trace, runs: list[dict]) -> tuple[float, int]:
    """FLOPs of every epoch the grader actually trained (cache hits excluded), and the epoch count."""
    fits = {f.index: f for f in trace.fits}
    total, epochs = 0.0, 0
    for run in runs:
        if run["cached"] or not run["epochs_run"]:
            continue
        first = fits[run["fit_indices"][0]]
        model = rebuild_model(first.model, (None, *first.x.shape[1:]))
        macs = macs_per_row(model)
        rows = int(first.x.shape[0])
        n_val = round(rows * VAL_SHARE)
        steps = -(-(rows - n_val) // int(first.batch_size or DEFAULT_BATCH))
        update = update_flops(model, first.compile.optimizer) if first.compile else 0
        # fwd 2 + bwd 4 per MAC on the training rows, the update once per step; validation: forward only
        per_epoch = 6 * macs * (rows - n_val) + steps * update + 2 * macs * n_val
        total += per_epoch * run["epochs_run"] + (2 * macs * TEST_ROWS if run["test_accuracy"] is not None else 0)
        epochs += run["epochs_run"]
    return total / 1e9, epochs


def main() -> None:
    notebook = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "submissions" / "correct_full.ipynb").resolve()
    load_before = os.getloadavg()
    gflops = sgemm_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_grader, result = grade(notebook, tmp / "out")
        trace = Trace.load(next((tmp / "out" / "work").glob("*/trace.json")))
        (tmp / "exec").mkdir()
        t_exec, exec_errors = reexecute(notebook, tmp / "exec")
    gflops = max(gflops, sgemm_gflops())  # other jobs only ever slow it down: best of before and after
    gflop, epochs = retrained_gflop(trace, result["runs"])
    floor = gflop / gflops
    t = result["meta"]["timings"]
    split = {k: t.get(f"{k}_s", 0.0) for k in ("capture", "retrain", "rules", "report")}
    rest = t_grader - sum(split.values())
    print(f"hand-in: {notebook.name}: {len(trace.fits)} fits, {len(result['runs'])} models, {epochs} epochs retrained "
          f"(full budget, empty cache), grade {result['score']:g}/{result['max_score']:g}")
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after (shared: other jobs slow every number down)")
    print(f"grader       : {t_grader:7.1f} s wall")
    print("  split      : " + ", ".join(f"{k} {v:.1f} s ({100 * v / t_grader:.0f}%)" for k, v in split.items())
          + f", rest {rest:.1f} s ({100 * rest / t_grader:.0f}%: start-up, static analysis, summary, exports)")
    print(f"  capture + rules + report = {100 * (split['capture'] + split['rules'] + split['report']) / t_grader:.0f}% "
          "of the wall time (target <= 10%)")
    print(f"re-execution : {t_exec:7.1f} s wall (nbclient, the student's epochs; {exec_errors})")
    print(f"floor        : {floor:7.1f} s  ({gflop:.0f} GFLOP retrained at sgemm {gflops:.0f} GFLOP/s)")
    print(f"ratio grader/floor = {t_grader / floor:.2f}")
    print(f"ratio grader/reexecution = {t_grader / t_exec:.2f}")


if __name__ == "__main__":
    main()
