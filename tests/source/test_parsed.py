"""Static analysis parses each cell once and refuses cells over its size limit (grader.source.parsed)."""

from __future__ import annotations

import time
import tracemalloc

from grader.capture.trace import Trace
from grader.rules import load_rubric
from grader.source.fit_sites import expected_fits
from grader.source.parsed import MAX_CELL_CHARS, parse_cell
from grader.source.static import analyze
from grader.source.suspicious import SuspiciousPatterns, find_suspicious
from tests.builders import notebook, run_rules, standard_cells

# 8 MB of generated code, as a hostile hand-in would paste: one long, valid, deeply repetitive cell.
HUGE = "".join(f"capa_{i} = keras.layers.Dense({i % 512 + 1}, activation='relu')\n" for i in range(150_000))


def _patterns() -> SuspiciousPatterns:
    params = load_rubric().rules["suspicious_code"].params
    return SuspiciousPatterns.from_params(params)


def test_every_stage_shares_one_parse_per_cell() -> None:
    cells = standard_cells()
    sub = notebook(cells)
    parse_cell.cache_clear()
    static = analyze(sub)
    find_suspicious(sub, _patterns())
    expected_fits(sub, {c.index for c in sub.code_cells}, static)
    run_rules(sub, Trace(student="t", static=static))
    info = parse_cell.cache_info()
    distinct = len({c.source for c in sub.code_cells})
    assert info.misses == distinct and info.hits >= 2 * distinct, info


def test_a_huge_cell_is_not_parsed_and_the_rules_say_so() -> None:
    assert len(HUGE) > 8 * 2**20 > MAX_CELL_CHARS
    cells = standard_cells()
    cells.insert(3, ("code", HUGE))
    sub = notebook(cells)
    tracemalloc.start()
    t = time.monotonic()
    static = analyze(sub)
    find_suspicious(sub, _patterns())
    verdicts, _ = run_rules(sub, Trace(student="t", static=static))
    seconds = time.monotonic() - t
    grown_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"8 MB cell: static analysis + suspicious + rules in {seconds:.2f} s, peak allocations {grown_mb:.0f} MB")
    assert static["unanalyzed"] == [{"cell": 3, "reason": "too_large", "chars": len(HUGE), "limit": MAX_CELL_CHARS}]
    assert seconds < 20 and grown_mb < 300
    v = verdicts["code_parses"]
    assert v.status == "warn" and "celda 4" in v.message and str(MAX_CELL_CHARS) in v.message, v.message
    assert static["fits"], "the other cells are still analysed"
