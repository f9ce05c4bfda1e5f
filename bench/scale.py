"""Scaling of `grader grade --cluster`: the same N hand-ins (quick budget) graded serially (today's
local batch, --jobs 1), then on a Dask `local:1` and `local:2`, each from an empty retrain cache.

Run: .venv/bin/python bench/scale.py [--n 4] [--samples tiny|submissions] [--keep DIR]
  tiny         N small generated notebooks (real kernel, real retrain on 1500 rows, 1 epoch): minutes
  submissions  the first N sample hand-ins of submissions/ (full Fashion-MNIST): an hour or more

Prints the wall times and the ratios measured in this one run, the per-hand-in cost, the per-task
Dask overhead (local:1 minus serial, cluster start-up apart) and the wall time projected for 100
and 300 hand-ins on M machines: hand-ins x (cost + overhead) / M. Not a test: nothing asserts a time
(targets on a 2-core machine: local:2 >= 1.6x faster than serial; overhead < 2% of a hand-in).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.batch import grade_batch
from grader.cluster import ClusterDispatch, connect, parse_spec, wait_for_workers
from grader.options import Budget, GradeOptions

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.builders import tiny_notebook  # noqa: E402  (the batch tests' tiny hand-in)


def make_handins(folder: Path, n: int, samples: str) -> Path:
    folder.mkdir(parents=True)
    if samples == "tiny":
        for i in range(n):
            nbformat.write(tiny_notebook(16 + 8 * i), folder / f"alumno{i}.ipynb")
        return folder
    picked = sorted(p for p in (REPO / "submissions").iterdir() if p.suffix in (".ipynb", ".py") or p.is_dir())[:n]
    for p in picked:
        (shutil.copytree if p.is_dir() else shutil.copy2)(p, folder / p.name)
    return folder


def timed(mode: str, handins: Path, root: Path) -> float:
    opts = GradeOptions(out_dir=root / mode / "out", budget=Budget(name="quick"), pdf=False,
                        cache_dir=root / mode / "cache")
    dispatch = None if mode == "serial" else ClusterDispatch(parse_spec(mode), opts, progress=False)
    started = time.monotonic()
    summary = grade_batch(handins, opts, jobs=1, progress=False, dispatch=dispatch)
    wall = time.monotonic() - started
    print(f"  {mode:8s} {wall:8.1f} s   graded {len(summary.graded)}, grader errors {len(summary.failed)}",
          flush=True)
    return wall


def cluster_start_s(spec: str) -> float:
    """Starting (and closing) a LocalCluster with its workers: paid once per batch, not per hand-in."""
    started = time.monotonic()
    with connect(parse_spec(spec)) as client:
        wait_for_workers(client, int(spec.split(":")[1]), 120)
        up = time.monotonic() - started
    return up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="hand-ins (default 4)")
    ap.add_argument("--samples", choices=["tiny", "submissions"], default="tiny")
    ap.add_argument("--keep", type=Path, help="keep the outputs in this folder")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="grader-scale-"))
    handins = make_handins(root / "in", args.n, args.samples)
    n = len(list(handins.iterdir()))
    print(f"{n} hand-ins ({args.samples}), quick budget, empty cache per mode")
    start1 = cluster_start_s("local:1")
    start2 = cluster_start_s("local:2")
    print(f"  cluster start-up: local:1 {start1:.1f} s, local:2 {start2:.1f} s")
    walls = {mode: timed(mode, handins, root) for mode in ("serial", "local:1", "local:2")}

    per_handin = walls["serial"] / n
    overhead = max(0.0, walls["local:1"] - start1 - walls["serial"]) / n
    print(f"\nspeed-up vs serial: local:1 {walls['serial'] / walls['local:1']:.2f}x, "
          f"local:2 {walls['serial'] / walls['local:2']:.2f}x (target >= 1.6x)")
    print(f"per hand-in: {per_handin:.1f} s; per-task Dask overhead {overhead:.2f} s "
          f"= {100 * overhead / per_handin:.1f}% of a hand-in (target < 2%)")
    print("\nprojected wall time, hand-ins x (cost + overhead) / machines, one worker per machine:")
    print("  machines " + "".join(f"{h:>12d} hand-ins" for h in (100, 300)))
    for m in (1, 5, 10, 20, 50):
        cells = "".join(f"{h * (per_handin + overhead) / m / 3600:>19.2f} h" for h in (100, 300))
        print(f"  {m:8d} {cells}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
