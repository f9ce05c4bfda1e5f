"""Similarity step of a 100-hand-in batch: the samples, the honest solutions and disguised copies.

Run: .venv/bin/python bench/similarity.py [--handins 100] [--repeat 1]
Builds the test batch of scripts/disguise.py (samples, four honest solutions, their copies) and tops
it up to --handins with more disguised copies (other renamings, some reordered, some with comments
rewritten), loads it once, then times the batch's similarity step (fingerprints, pairs, similarity.json
and similarity.html) and prints the time and its ratio to the 30 s budget. Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.load import find_submissions  # noqa: E402
from grader.review.similarity_report import similarity_step  # noqa: E402
from grader.rules import load_rubric  # noqa: E402
from scripts.disguise import (  # noqa: E402
    HONEST,
    SAMPLES,
    build_batch,
    notebook,
    read_notebook,
    recomment,
    rename,
    reorder,
    without_outputs,
    write,
)

BUDGET_S = 30.0


def build(folder: Path, handins: int) -> None:
    build_batch(folder)
    originals = [notebook(cells) for cells in HONEST.values()]
    originals += [read_notebook(SAMPLES / name) for name in ("correct_full.ipynb", "legacy_keras2.ipynb",
                                                             "tests_on_test_each_time.ipynb")]
    count = sum(1 for _ in folder.iterdir())
    i = 0
    while count < handins:
        nb = rename(originals[i % len(originals)], salt=7 * i + 3)
        nb = reorder(nb) if i % 2 else nb
        nb = recomment(nb) if i % 3 else nb
        write(without_outputs(nb) if i % 4 == 0 else nb, folder / f"extra_{i:03d}.ipynb")
        count, i = count + 1, i + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handins", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    spec = load_rubric().similarity
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        folder, out = Path(tmp) / "entregas", Path(tmp) / "out"
        build(folder, args.handins)
        start = time.perf_counter()
        subs = find_submissions(folder, workdir=Path(tmp) / "extracted")
        load_s = time.perf_counter() - start
        times, link = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            link = similarity_step(subs, spec, out)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(f"hand-ins: {len(subs)}   loading them (not part of the step): {load_s:.2f} s")
        print(f"pairs listed: {link['pairs'] if link else '-'}   flagged: {link['flagged'] if link else '-'}")
        print(f"similarity step (best of {args.repeat}): {best:.2f} s   ratio to {BUDGET_S:.0f} s: {best / BUDGET_S:.3f}")


if __name__ == "__main__":
    main()
