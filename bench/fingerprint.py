"""Row fingerprint speed: build the index once, then match all 70,000 rows per transformation.

Run: .venv/bin/python bench/fingerprint.py [--repeat N]
Prints the best of N runs per step (best-of filters out noise from other processes on the machine).
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from grader.data import RowIndex, load_fashion_mnist


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    load_s, data = best_of(1, load_fashion_mnist)  # first load: the cache makes repeats free
    build_s, index = best_of(args.repeat, lambda: RowIndex.from_dataset(data))
    print(f"load Fashion-MNIST (gzip + numpy, first call): {load_s:7.3f} s   from {data.source}")
    print(f"build RowIndex (70,000 rows):                  {build_s:7.3f} s")

    everything = np.concatenate([data.x_train, data.x_test])
    scaled = everything / 255.0
    transforms = {
        "uint8 (n,28,28)": everything,
        "float32 /255 (n,784)": scaled.astype(np.float32).reshape(len(everything), 784),
        "float64 /255 (n,28,28)": scaled,
        "float32 standardised (n,28,28,1)":
            ((scaled - scaled.mean()) / scaled.std()).astype(np.float32)[..., None],
        "float16 /255 (n,28,28)": scaled.astype(np.float16),
    }
    print(f"\n{'match 70,000 rows':34s} {'seconds':>8s} {'rows/s':>12s}  summary")
    for name, array in transforms.items():
        seconds, result = best_of(args.repeat, lambda a=array: index.match(a))
        found = result.summary()
        assert found["train"] == 60000 and found["test"] == 10000, (name, found)
        print(f"{name:34s} {seconds:8.3f} {len(array) / seconds:12,.0f}  {found}")


if __name__ == "__main__":
    main()
