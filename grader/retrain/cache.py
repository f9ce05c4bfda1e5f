"""On-disk cache of retrain results, keyed by everything that decides the numbers.

One JSON file per key under `<cache_dir>/<key[:2]>/<key>.json`. Writes go to a temp file in the same
folder and are moved into place with `os.replace`, so concurrent graders never see half a file;
an unreadable entry counts as a miss and is overwritten by the next result.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from grader.codec import from_json, to_json
from grader.results import RunResult

# Bump when the trainer's math changes, so old entries stop matching.
TRAINER_VERSION = "3"  # 2: runs record which epoch's weights were tested; 3: runs say what the budget cut


@cache
def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from grader import __version__

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "grader": __version__,
            "trainer": TRAINER_VERSION}


def cache_key(material: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `material` plus the library versions."""
    blob = json.dumps({"material": material, "versions": versions()}, sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def load(cache_dir: Path | None, key: str) -> RunResult | None:
    """The stored RunResult for `key`, or None (missing or corrupt)."""
    if cache_dir is None:
        return None
    try:
        run = from_json(RunResult, _path(cache_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    return run if run.cache_key == key else None


def store(cache_dir: Path | None, run: RunResult) -> None:
    """Write `run` under its cache_key atomically; a failing disk never fails the grading."""
    if cache_dir is None or not run.cache_key:
        return
    path = _path(cache_dir, run.cache_key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(to_json(run))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
