"""Reports: per hand-in HTML/PDF, the class summary, and machine-readable exports.

    render_report(result, out_dir, pdf=True)       -> ReportFiles   out_dir/<student>.html (+ .pdf)
    render_summary(results, out_dir, report_links) -> Path          out_dir/index.html
    write_exports(results, out_dir)                -> dict[str, Path]
    render_plots(result)                           -> dict[str, str] exercise -> PNG data URI
    platforms.export_moodle / export_canvas         grades back to Moodle / Canvas (`grader export`)
"""

from grader.report.exports import write_exports
from grader.report.plots import render_plots
from grader.report.render import ReportFiles, environment, render_report, report_filename
from grader.report.summary import render_summary

__all__ = [
    "ReportFiles",
    "environment",
    "render_plots",
    "render_report",
    "render_summary",
    "report_filename",
    "write_exports",
]
