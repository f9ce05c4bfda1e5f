"""Similarity between the hand-ins of one batch: copied code and copied outputs. Flags only.

Code: every hand-in's cells are reduced to winnowing fingerprints of normalised tokens
(grader.review.fingerprint), so renaming, comments, whitespace and cell order do not hide a copy.
The code the course gives everyone does not count: the fingerprints of the rubric's template file,
or, without one, those that most of a large enough batch shares, are removed first.
A pair's code score is the share of the smaller hand-in's fingerprints that the other one has; the
matching regions (runs of shared fingerprints at the same offsets in both) are the evidence, and one
long region flags a single copied exercise even when the rest differs.

Outputs: the same numbers printed to the last digit (training logs, accuracies) are the same run.

Nothing here changes a grade: the result is similarity.json (read by the review queue) and
similarity.html for the instructor.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from grader.load import Submission, load_submission
from grader.review.fingerprint import Fingerprint, Token, fingerprint_stream, kgram_hashes, normalise
from grader.rubric import SimilaritySpec
from grader.source.reported import output_text

log = logging.getLogger(__name__)

_PRECISE = re.compile(r"(?<![\w.])-?\d+\.\d{3,}(?:[eE][-+]?\d+)?(?![\w.])")  # 0.8734, 2.3e-05
_UNTRAINED_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes: every zero-init run prints it
_MAX_OUTPUT_LINES = 5000  # per hand-in
_MAX_OCCURRENCES = 4  # a fingerprint repeated more often than this in one hand-in is boilerplate there
_MAX_REGIONS = 4  # per pair, in the report
_MAX_EXCERPT_LINES = 40  # per side of a region


@dataclass
class HandinPrints:
    """What one hand-in contributes to the comparison."""

    student: str
    tokens: list[Token]  # the code cells' normalised tokens, one stream in cell order
    prints: list[Fingerprint]  # winnowed; the template's are removed by compare_batch
    cells: dict[int, tuple[str, str, int]]  # cell index -> (label, source, line offset in its file)
    output_lines: dict[tuple[str, ...], tuple[int, str]]  # numbers of a line -> (cell index, the line)
    positions: dict[int, list[Fingerprint]] = field(default_factory=dict)
    _bounds: list[tuple[int, int, int]] | None = field(default=None, repr=False)

    @property
    def cell_bounds(self) -> list[tuple[int, int, int]]:
        """(cell, first token, last token) of every cell with tokens, in stream order."""
        if self._bounds is None:
            self._bounds = []
            for i, t in enumerate(self.tokens):
                if self._bounds and self._bounds[-1][0] == t.cell:
                    self._bounds[-1] = (t.cell, self._bounds[-1][1], i)
                else:
                    self._bounds.append((t.cell, i, i))
        return self._bounds

    @property
    def hashes(self) -> set[int]:
        return set(self.positions)


@dataclass
class Region:
    """A run of code that both hand-ins of a pair share."""

    a_where: str  # "celdas 9–11" / "celda 9, líneas 2–5"
    b_where: str
    tokens: int  # normalised tokens covered
    a_excerpt: list[tuple[str, str]]  # (cell label, source lines) per cell the region touches
    b_excerpt: list[tuple[str, str]]


@dataclass
class Pair:
    a: str
    b: str
    score: float  # max(code_score, output_score), in [0, 1]
    flagged: bool
    code_score: float
    output_score: float
    shared_fingerprints: int
    longest_region_tokens: int
    shared_output_lines: int
    reasons: list[str]  # why it is flagged, Spanish (the instructor's report and the review queue)
    regions: list[Region] = field(default_factory=list)
    same_outputs: list[str] = field(default_factory=list)  # examples of identical output lines


def handin_prints(sub: Submission, spec: SimilaritySpec) -> HandinPrints:
    """Fingerprints, cell labels and numeric output lines of one hand-in (template not yet removed)."""
    tokens: list[Token] = []
    cells: dict[int, tuple[str, str, int]] = {}
    outputs: dict[tuple[str, ...], tuple[int, str]] = {}
    multi_file = len({c.origin.file for c in sub.cells}) > 1
    for cell in sub.code_cells:
        if cell.origin.file.lower().endswith(".py"):  # a script's cells are pieces of it: name file lines
            cells[cell.index] = (cell.origin.file, cell.source, cell.origin.line - 1)
        else:
            label = f"{cell.origin.file}, celda {cell.number}" if multi_file else f"celda {cell.number}"
            cells[cell.index] = (label, cell.source, 0)
        tokens += normalise(cell.source, cell.index)
        for line in re.split(r"[\r\n]+", output_text(cell))[-_MAX_OUTPUT_LINES:]:
            numbers = tuple(_PRECISE.findall(line))
            if len(numbers) >= 2 and not any(abs(float(n) - _UNTRAINED_LOSS) < 0.005 for n in numbers):
                outputs.setdefault(numbers, (cell.index, line.strip()[:200]))
    return HandinPrints(sub.student, tokens, fingerprint_stream(tokens, spec.kgram, spec.window), cells, outputs)


def template_hashes(path: Path, spec: SimilaritySpec) -> set[int]:
    """Every k-gram hash of the template's code (not only the winnowed ones: whatever a student kept
    of it, any fingerprint inside it must go)."""
    template = load_submission(path)
    tokens = [t for cell in template.code_cells for t in normalise(cell.source, cell.index)]
    return set(kgram_hashes(tokens, spec.kgram))


def common_hashes(prints: list[HandinPrints], spec: SimilaritySpec) -> set[int]:
    """Fingerprints that more than `common_fraction` of the batch has: the course's code, not a copy
    (only in batches large enough for a majority to mean something)."""
    if len(prints) < spec.common_min_handins:
        return set()
    counts = Counter(h for p in prints for h in {f.hash for f in p.prints})
    return {h for h, n in counts.items() if n > spec.common_fraction * len(prints)}


def compare_batch(subs: list[Submission], spec: SimilaritySpec) -> list[Pair]:
    """Every pair of hand-ins worth reporting (score >= report_from, or flagged), highest score first."""
    prints = []
    for sub in subs:
        if sub.load_error is not None:
            continue
        try:
            prints.append(handin_prints(sub, spec))
        except Exception:  # one odd hand-in must not take the comparison of the others down
            log.exception("similarity: cannot fingerprint %s", sub.student)
    template = template_hashes(spec.template, spec) if spec.template else common_hashes(prints, spec)
    common_lines = _common_output_lines(prints, spec)
    for p in prints:
        p.prints = [f for f in p.prints if f.hash not in template]
        for f in p.prints:
            p.positions.setdefault(f.hash, []).append(f)
        p.positions = {h: fs for h, fs in p.positions.items() if len(fs) <= _MAX_OCCURRENCES}
        for key in common_lines:
            p.output_lines.pop(key, None)
    pairs = [pair for a, b in _candidates(prints) if (pair := compare_pair(a, b, spec)) is not None]
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


def _candidates(prints: list[HandinPrints]) -> list[tuple[HandinPrints, HandinPrints]]:
    """Pairs that share at least one fingerprint or output line (an inverted index, not all n² pairs)."""
    by_key: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(prints):
        for h in p.positions:
            by_key[h].append(i)
        for line in p.output_lines:
            by_key[line].append(i)
    seen: set[tuple[int, int]] = set()
    for owners in by_key.values():
        seen.update(combinations(owners, 2))
    return [(prints[i], prints[j]) for i, j in sorted(seen)]


def compare_pair(a: HandinPrints, b: HandinPrints, spec: SimilaritySpec) -> Pair | None:
    """The pair's scores, regions and flags; None when it is below `report_from` and not flagged."""
    shared = a.hashes & b.hashes
    smaller = min(len(a.positions), len(b.positions))
    code_score = len(shared) / smaller if smaller and len(shared) >= spec.min_shared else 0.0
    runs = _runs(a, b, shared, spec) if len(shared) >= spec.min_shared else []
    longest = runs[0][0] if runs else 0
    same_lines = [line for key, (_, line) in a.output_lines.items() if key in b.output_lines]
    fewer_lines = min(len(a.output_lines), len(b.output_lines))
    output_score = len(same_lines) / fewer_lines if fewer_lines and len(same_lines) >= spec.flag_output_lines else 0.0
    reasons = []
    if code_score >= spec.flag_score:
        reasons.append(f"el {code_score:.0%} del código de una entrega está en la otra")
    if longest >= spec.flag_region_tokens:
        reasons.append(f"un fragmento de {longest} elementos de código es igual en las dos")
    if output_score:
        reasons.append(f"{len(same_lines)} líneas de resultados idénticas hasta el último decimal (la misma ejecución)")
    score = max(code_score, output_score)
    if score < spec.report_from and not reasons:
        return None
    regions = [_region(a, b, first, last, spec.kgram) for _, first, last in runs[:_MAX_REGIONS]]
    return Pair(a.student, b.student, round(score, 4), bool(reasons), round(code_score, 4), round(output_score, 4),
                len(shared), longest, len(same_lines), reasons, regions, same_lines[:5])


def _runs(a: HandinPrints, b: HandinPrints, shared: set[int], spec: SimilaritySpec) -> list[tuple[int, tuple, tuple]]:
    """Runs of shared fingerprints that sit at the same offsets in both hand-ins (one diagonal), as
    (tokens covered, first (a, b) start, last (a, b) start), longest first. Gaps up to k + w tokens
    are bridged: winnowing keeps at least one fingerprint per window, and a value changed inside a
    copied block (same length, same diagonal) should not split it."""
    diagonals: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for h in shared:
        for fa in a.positions[h]:
            for fb in b.positions[h]:
                diagonals[fb.start - fa.start].append((fa.start, fb.start))
    gap = spec.kgram + spec.window
    runs: list[tuple[int, tuple, tuple]] = []
    for points in diagonals.values():
        points.sort()
        first = last = points[0]
        for point in points[1:] + [None]:
            if point is not None and point[0] - last[0] <= gap:
                last = point
                continue
            runs.append((last[0] + spec.kgram - first[0], first, last))
            if point is not None:
                first = last = point
    runs.sort(key=lambda r: -r[0])
    return runs


def _region(a: HandinPrints, b: HandinPrints, first: tuple[int, int], last: tuple[int, int], k: int) -> Region:
    a_span = _spans(a, first[0], last[0] + k - 1)
    b_span = _spans(b, first[1], last[1] + k - 1)
    return Region(_where(a, a_span), _where(b, b_span), last[0] + k - first[0], _excerpt(a, a_span),
                  _excerpt(b, b_span))


def _spans(p: HandinPrints, first: int, last: int) -> dict[int, tuple[int, int]]:
    """First and last line, in every cell they touch, of the tokens first..last of the stream."""
    last = min(last, len(p.tokens) - 1)
    spans = {}
    for cell, start, end in p.cell_bounds:  # tokens are in cell order, lines ascending in a cell
        if end >= first and start <= last:
            spans[cell] = (p.tokens[max(start, first)].line, p.tokens[min(end, last)].line)
    return spans


def _where(p: HandinPrints, spans: dict[int, tuple[int, int]]) -> str:
    """ "celda 7, líneas 2–5", "celda 7, línea 9 a celda 9, línea 2", "ej1.py, líneas 12–30"."""
    (c0, (first, _)), (c1, (_, last)) = next(iter(spans.items())), list(spans.items())[-1]
    (label0, _, off0), (label1, _, off1) = p.cells[c0], p.cells[c1]
    first, last = first + off0, last + off1
    if label0 == label1:
        return f"{label0}, líneas {first}–{last}" if first != last else f"{label0}, línea {first}"
    return f"{label0}, línea {first} a {label1}, línea {last}"


def _excerpt(p: HandinPrints, spans: dict[int, tuple[int, int]]) -> list[tuple[str, str]]:
    """The region's source lines, one block per notebook cell or per script file, at most
    _MAX_EXCERPT_LINES in all (a whole copied notebook is one region: its first lines make the point)."""
    groups: list[dict[int, tuple[int, int]]] = []
    for c, span in spans.items():
        label = p.cells[c][0]
        if groups and label.lower().endswith(".py") and p.cells[next(iter(groups[-1]))][0] == label:
            groups[-1][c] = span  # the next piece of the same script: one block
        else:
            groups.append({c: span})
    out, budget = [], _MAX_EXCERPT_LINES
    for group in groups:
        lines = [line for c, (first, last) in group.items() for line in p.cells[c][1].splitlines()[first - 1:last]]
        if len(lines) >= budget and (len(lines) > budget or len(out) + 1 < len(groups)):
            out.append((_where(p, group), "\n".join(lines[:budget] + ["…"])))
            break
        out.append((_where(p, group), "\n".join(lines)))
        budget -= len(lines)
    return out


def _common_output_lines(prints: list[HandinPrints], spec: SimilaritySpec) -> set[tuple[str, ...]]:
    """Output lines most of the batch printed (a deterministic run everyone did): not evidence."""
    if len(prints) < spec.common_min_handins:
        return set()
    counts = Counter(key for p in prints for key in p.output_lines)
    return {key for key, n in counts.items() if n > spec.common_fraction * len(prints)}
