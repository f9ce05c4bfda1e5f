"""The accuracies a student printed in the SAVED outputs of a notebook (never trusted as results:
`reported_vs_reproduced` compares them with the grader's own retrain, and rules fall back to them,
saying so, when a model could not be reproduced)."""

from __future__ import annotations

import re
from typing import Any

from grader.load import Cell, Submission

_NUMBER = r"(\d+(?:\.\d+)?(?:[eE]-?\d+)?)(?![\d.])\s*(%?)"
_KERAS_KV = re.compile(r"\b((?:val_|test_)?acc(?:uracy)?)\s*[:=]\s*" + _NUMBER)
_PROSE = re.compile(r"(?i)(accuracy|acc\b|precisi[oó]n|exactitud|acierto)[^\d\n]{0,40}?" + _NUMBER)
_EVAL_LIST = re.compile(r"^\s*\[\s*([-\d.eE]+)\s*,\s*([-\d.eE]+)\s*\]\s*$")
_MAX_PER_CELL = 400


_MAX_OUTPUT_CHARS = 2_000_000  # per cell: the tail, where the last epochs and results are


def output_text(cell: Cell) -> str:
    """The saved text outputs of a cell (streams and text/plain results), joined; at most the last
    _MAX_OUTPUT_CHARS characters."""
    parts = []
    for out in cell.outputs:
        if not isinstance(out, dict):
            continue
        text = out.get("text")
        if text is None:
            text = (out.get("data") or {}).get("text/plain")
        if isinstance(text, list):
            text = "".join(str(t) for t in text)
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)[-_MAX_OUTPUT_CHARS:]


def reported_metrics(sub: Submission) -> list[dict[str, Any]]:
    """Accuracies the student's SAVED outputs show: [{cell, metric, value, text}], value in [0, 1].

    `metric` is "val_accuracy", "test_accuracy" or "accuracy" (training or unknown). A plain
    "accuracy" printed by a cell that evaluates on the test set and does not fit counts as test.
    """
    found: list[dict[str, Any]] = []
    for cell in sub.code_cells:
        text = output_text(cell)
        if not text:
            continue
        src = cell.source.lower()
        test_cell = bool(re.search(r"\.evaluate\([^)]*test", src)) and ".fit(" not in src
        rows: list[dict[str, Any]] = []
        for raw in re.split(r"[\r\n]+", _apply_backspaces(text)):
            line = raw.strip()
            if not line:
                continue
            hits = [(m.group(1), m.group(2), m.group(3)) for m in _KERAS_KV.finditer(line)]
            if not hits:
                hits = [(m.group(1), m.group(2), m.group(3)) for m in _PROSE.finditer(line)][:1]
            match = _EVAL_LIST.match(line)
            if not hits and match and test_cell:
                hits = [("test_accuracy", match.group(2), "")]
            for key, number, percent in hits:
                value = _accuracy_value(number, percent)
                if value is None:
                    continue
                rows.append({"cell": cell.index, "metric": _metric(key, line, test_cell), "value": value,
                             "text": line[:160]})
        found += rows[-_MAX_PER_CELL:]
    return found


def _apply_backspaces(text: str) -> str:
    """Old Keras progress bars rewind with \\b; keep what a terminal would show."""
    if "\x08" not in text:
        return text
    out: list[str] = []
    for ch in text:
        if ch == "\x08":
            if out and out[-1] not in "\r\n":
                out.pop()
        else:
            out.append(ch)
    return "".join(out)


def _accuracy_value(number: str, percent: str) -> float | None:
    try:
        value = float(number)
    except ValueError:
        return None
    if percent or 1.0 < value <= 100.0:
        value /= 100.0
    return value if 0.0 <= value <= 1.0 else None


def _metric(key: str, line: str, test_cell: bool) -> str:
    key, low = key.lower(), line.lower()
    if key.startswith("val_") or key == "val_accuracy":
        return "val_accuracy"
    if key.startswith("test") or "test" in low:
        return "test_accuracy"
    if (not key.startswith("acc") and re.search(r"\bval", low)) or "validaci" in low:
        return "val_accuracy"
    return "test_accuracy" if test_cell else "accuracy"
