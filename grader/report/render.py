"""Per hand-in report: one Jinja2 environment, HTML for the browser and PDF (WeasyPrint) from the same template.

Templates are looked up like pdoc does: an optional user folder first, then the shipped `templates/`;
a user template can extend a shipped one as `{% extends "default/report.html" %}`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined

from grader.load import file_stem
from grader.report.plots import render_plots
from grader.report.view import report_context
from grader.resources import templates_dir
from grader.results import GradeResult

log = logging.getLogger(__name__)


@dataclass
class ReportFiles:
    html: Path
    pdf: Path | None = None
    pdf_pages: int | None = None  # as laid out by WeasyPrint (tests compare it with the PDF on disk)
    pdf_error: str | None = None  # why no PDF was written although one was asked for


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> Environment:
    """The Jinja2 environment (one per template folder; cached so that templates compile once)."""
    shipped = FileSystemLoader(str(templates_dir()))
    loaders: list[Any] = [FileSystemLoader(str(template_dir))] if template_dir else []
    loaders += [shipped, PrefixLoader({"default": shipped})]
    # autoescape=True for every template (not select_autoescape): student ids, messages and code
    # excerpts only ever enter as context values, so they are escaped and never parsed as Jinja.
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def report_filename(student: str, suffix: str = ".html") -> str:
    """A file name for `student` that cannot leave the output folder ("../x" or "a/b" are hand-in
    ids too), is never another output's name ("index") and fits a file system: see `file_stem`."""
    return file_stem(student) + suffix


def render_report(
    result: GradeResult,
    out_dir: Path,
    *,
    pdf: bool = True,
    template_dir: Path | None = None,
) -> ReportFiles:
    """Write out_dir/<student>.html (and .pdf); return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(Path(template_dir) if template_dir else None)
    template = env.get_template("report.html")
    plots = render_plots(result)
    html_path = out_dir / report_filename(result.student)
    html_path.write_text(template.render(report_context(result, plots, pdf=False)), encoding="utf-8")
    files = ReportFiles(html=html_path)
    if pdf:
        target = html_path.with_suffix(".pdf")
        try:
            files.pdf_pages = write_pdf(template.render(report_context(result, plots, pdf=True)), target)
            files.pdf = target
        except Exception as exc:
            log.error("PDF report for %s failed: %s", result.student, exc)
            files.pdf_error = f"{type(exc).__name__}: {exc}"
    return files


def write_pdf(html: str, target: Path) -> int:
    """Lay out `html` with WeasyPrint and write it to `target`; return the number of pages."""
    import weasyprint  # slow import (pango, fonts): only when a PDF is asked for

    # Reports are self-contained: allowing only data: URIs means nothing in a hand-in can make the
    # grader read local files or the network while it lays out a PDF.
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"data"})
    document = weasyprint.HTML(string=html, url_fetcher=fetcher).render()
    document.write_pdf(str(target))
    return len(document.pages)
