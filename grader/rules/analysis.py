"""Written analysis after each exercise: long enough and about the expected ideas.

For notebooks: Markdown cells of an exercise's section that come after its first code cell (the
template's own statement comes before the code, and its bold "**Ejercicio N**" / "**Pregunta N**"
statement cells are ignored). For .py hand-ins: comments and docstrings of the exercise's file or section.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import replace

from grader.load import Cell
from grader.results import EXERCISES, Evidence, Verdict
from grader.rules.attribution import Numbering, fold, marker_exercise
from grader.rules.base import BaseRule, RuleContext, where
from grader.source.parsed import parse_cell

_STATEMENT = re.compile(r"^\W*\*\*\W*(ejercicio|pregunta)\s*\d")  # the template's bold statements
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")


def words(text: str) -> int:
    return len(re.findall(r"[^\W\d_]{2,}", text))


def comments_and_docstrings(source: str) -> str:
    """Prose inside Python code: # comments and string statements (docstrings)."""
    parts = []
    parsed = parse_cell(source)
    code = parsed.source
    if code is None:
        return ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                parts.append(tok.string.lstrip("#").strip())
    except (tokenize.TokenError, IndentationError, SyntaxError):
        parts += [line.split("#", 1)[1] for line in code.splitlines() if "#" in line]
    if parsed.tree is None:
        return "\n".join(parts)
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            parts.append(node.value.value)
    return "\n".join(parts)


def markdown_prose(cell: Cell) -> str:
    """A Markdown cell's prose: no headings, no fenced or indented code blocks. Markdown exports
    (nbconvert, Jupyter's "Download as Markdown") put each cell's printed output in an indented block
    after the code: that is the program's output, not the student's analysis."""
    lines, fenced, previous_blank = [], False, True
    indented = False
    for line in cell.source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        blank = not line.strip()
        # An indented block starts after a blank line and goes on while lines stay indented (or blank).
        if not fenced and (line.startswith(("    ", "\t")) and (previous_blank or indented)):
            indented = True
        elif not blank:
            indented = False
        previous_blank = blank
        if fenced or indented or _HEADING_LINE.match(line):
            continue
        lines.append(line)
    return "\n".join(lines)


class AnalysisWritten(BaseRule):
    id = "analysis_written"
    params = {"min_words": "int", "min_keywords": "int", "deduction_per_exercise": "number",
              "keywords": "dict[str,list[str]]"}
    messages = ("pass", "warn", "fail", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if skipped := self.skip_unless_trabajo2(ctx):
            return skipped
        p = self.spec(ctx).params
        if not ctx.submission.cells:
            return self.skip(ctx, "empty")
        prose = self.prose_by_exercise(ctx)
        missing, details, evidence = [], [], []
        for ex in EXERCISES:
            text, cells = prose[ex]
            count = words(text)
            keywords = [k for k in p["keywords"].get(ex, ()) if fold(k) in fold(text)]
            number = ex[2:]
            if count < p["min_words"]:
                missing.append(f"ejercicio {number}")
                details.append(f"ejercicio {number}: {count} palabras de análisis (mínimo {p['min_words']})")
            elif len(keywords) < p["min_keywords"]:
                missing.append(f"ejercicio {number}")
                expected = ", ".join(list(p["keywords"].get(ex, ()))[:4])
                details.append(f"ejercicio {number}: el análisis no menciona ideas como {expected}")
            if cells:
                evidence.append(Evidence(cell=cells[0], line=None, excerpt=text.strip()[:200],
                                         values={"exercise": ex, "words": count, "keywords": keywords},
                                         where=where(ctx, cells[0])))
        if not missing:
            return self.verdict(ctx, "pass", evidence=evidence)
        status = "fail" if len(missing) == len(EXERCISES) else "warn"
        deduct = p["deduction_per_exercise"] * len(missing)
        return self.verdict(ctx, status, values={"value": ", ".join(missing), "details": "; ".join(details) + "."},
                            evidence=evidence, deduct=deduct)

    def prose_by_exercise(self, ctx: RuleContext) -> dict[str, tuple[str, list[int]]]:
        """Analysis text and its cells per exercise."""
        out: dict[str, tuple[list[str], list[int]]] = {ex: ([], []) for ex in EXERCISES}
        seen_code: set[str] = set()
        # Prose pasted into a code cell is still the student's analysis (code_parses deducts for the cell).
        prose_cells = {e["cell"] for e in ctx.static.get("syntax_errors", [])}
        for cell in ctx.submission.cells:
            ex = ctx.cell_exercise.get(cell.index)
            is_py = cell.origin.file.lower().endswith(".py")
            if cell.cell_type == "code" and cell.index in prose_cells and not is_py:
                text = markdown_prose(cell)
            elif cell.cell_type == "code":
                if ex:
                    seen_code.add(ex)
                text = comments_and_docstrings(cell.source) if is_py else ""
            elif cell.cell_type == "markdown":
                # A Markdown export joins the analysis of one exercise and the heading of the next in
                # one cell: the prose above the heading is the previous exercise's.
                above, below = _split_at_heading(cell)
                before = ctx.cell_exercise.get(cell.index - 1) if above is not None else None
                pieces = [(before, above), (ex, below)] if before and before != ex else [(ex, cell)]
                for piece_ex, piece in pieces:
                    if piece is not None and (is_py or piece_ex is None or piece_ex in seen_code):
                        text = markdown_prose(piece)
                        if not _STATEMENT.match(fold(text.strip())):
                            self._add(out, text, piece_ex, cell.index, ctx.numbering)
                continue
            else:
                continue
            self._add(out, text, ex, cell.index, ctx.numbering)
        return {ex: ("\n".join(parts), cells) for ex, (parts, cells) in out.items()}

    @staticmethod
    def _add(out: dict[str, tuple[list[str], list[int]]], text: str, ex: str | None, index: int,
             numbering: Numbering) -> None:
        for part_ex, part in split_by_marker(text, ex, numbering):
            if part_ex in out and part.strip():
                out[part_ex][0].append(part)
                if index not in out[part_ex][1]:
                    out[part_ex][1].append(index)


def _split_at_heading(cell: Cell) -> tuple[Cell | None, Cell]:
    """(the cell's text above its first heading, the rest); (None, cell) when it opens with a heading
    or has none."""
    lines = cell.source.splitlines()
    first = next((i for i, line in enumerate(lines) if _HEADING_LINE.match(line)), None)
    if not first or not "\n".join(lines[:first]).strip():
        return None, cell
    return replace(cell, source="\n".join(lines[:first])), replace(cell, source="\n".join(lines[first:]))


def split_by_marker(text: str, exercise: str | None,
                    numbering: Numbering | None = None) -> list[tuple[str | None, str]]:
    """Cut prose at lines that announce an exercise ("Ejercicio 2: ...", "Pregunta 4.2"): one
    summary written in one place (a .py docstring, a closing cell) still counts per exercise."""
    parts: list[tuple[str | None, list[str]]] = [(exercise, [])]
    for line in text.splitlines():
        ex = marker_exercise(line, numbering)
        if ex:
            parts.append((ex, []))
        parts[-1][1].append(line)
    return [(ex, "\n".join(lines)) for ex, lines in parts if lines]
