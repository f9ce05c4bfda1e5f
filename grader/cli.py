"""Command line: argument parsing only; the work is in grader.pipeline / grader.batch.

Exit codes: 0 ok; 1 `check` found an error-severity rule failing; 2 bad usage or configuration
(GraderError); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from grader import __version__
from grader.errors import GraderError
from grader.options import Budget, GradeOptions, Limits, quiet_tensorflow


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grader",
        description="Grade 'Trabajo 2' (Keras, Fashion-MNIST) hand-ins: runs the student's code in a "
        "sandboxed kernel, retrains every model itself and writes HTML/PDF reports.",
    )
    p.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--rubric", type=Path, help="rubric YAML (default: the shipped trabajo2.yaml)")
        sp.add_argument("--data-dir", type=Path, help="folder with the four Fashion-MNIST .gz files")
        sp.add_argument("--cache-dir", type=Path, help="retrain cache (default: OUT/.cache)")
        sp.add_argument("--seed", type=int, default=1234, help="training seed (default 1234)")
        sp.add_argument("--no-pdf", action="store_true", help="skip the PDF reports")
        sp.add_argument("--cell-timeout", type=float, metavar="S",
                        help="seconds one cell of student code may run (default 120)")
        sp.add_argument("--total-timeout", type=float, metavar="S",
                        help="seconds the whole hand-in may run in the kernel (default 900)")
        sp.add_argument("--memory-mb", type=int, metavar="MB",
                        help="memory of the student kernel in MB (default 6144)")
        sp.add_argument("--disk-mb", type=int, metavar="MB",
                        help="size of the student kernel's work folder in MB (default 1024)")
        sp.add_argument("--inodes", type=int, metavar="N",
                        help="files and folders the student kernel may create (default 20000)")
        sp.add_argument("--retrain-budget", type=float, metavar="S",
                        help="seconds the trusted retrain may take per hand-in (default 1800)")
        sp.add_argument("--retrain-memory-mb", type=int, metavar="MB",
                        help="memory of the grader's own retrain process in MB (default 6144)")

    g = sub.add_parser("grade", help="grade every hand-in in a folder or ZIP (instructors)",
                       description="Grade a folder or ZIP of hand-ins into OUT: one report per hand-in, "
                       "index.html (class summary), grades.csv, results.json, junit.xml, gradebook.sqlite. "
                       "Re-running only re-grades hand-ins whose content or rubric changed.")
    g.add_argument("path", type=Path, help="folder or .zip of hand-ins (or one hand-in)")
    g.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    g.add_argument("--jobs", "-j", type=int, default=1, help="hand-ins graded in parallel (default 1)")
    g.add_argument("--force", action="store_true", help="re-grade everything, ignoring the gradebook")
    g.add_argument("--budget", choices=["full", "quick"], default="full",
                   help="full: the student's epochs (default); quick: comparison models capped")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--csv-dialect", choices=["en", "es"], default="en",
                   help="grades.csv for a Spanish-locale spreadsheet: 'es' = ';' separator, decimal comma")
    g.add_argument("--cluster", type=_cluster_spec, metavar="SPEC",
                   help="grade on a Dask cluster instead of local processes: local:N, tcp://HOST:PORT or "
                   "slurm:N (needs the extra grader[cluster]; see README, 'Grading on several machines')")
    g.add_argument("--cluster-timeout", type=float, default=10, metavar="S",
                   help="seconds to wait for the Dask scheduler to answer (default 10)")
    g.add_argument("--slurm-cores", type=int, default=2, help="CPUs of each SLURM job (default 2)")
    g.add_argument("--slurm-memory", default="8GB", help="memory of each SLURM job (default 8GB)")
    g.add_argument("--slurm-walltime", default="04:00:00", help="walltime of each SLURM job (default 04:00:00)")
    common(g)

    c = sub.add_parser("check", help="self-check one hand-in (students, CI)",
                       description="Grade one hand-in quickly and print a checklist (Spanish). Exit code 1 "
                       "when a rule of error severity fails.")
    c.add_argument("path", type=Path, help="the notebook, .py/.md file or folder to check")
    c.add_argument("--out", type=Path, default=Path("grader-report"), help="report folder")
    c.add_argument("--full", action="store_true", help="train every model with its full epochs")
    c.add_argument("--time-limit", type=_seconds, default=None, metavar="S",
                   help="seconds the whole quick check may take: capture, retrain, rules and report "
                   f"(default {Budget.check_s:g}; 0 = no limit; no effect with --full)")
    c.add_argument("--json", type=Path, metavar="FILE", help="write the machine-readable result here")
    c.add_argument("--ci", action="store_true",
                   help="also write OUT/junit.xml and print GitHub-style annotations")
    common(c)

    cap = sub.add_parser("capture", help="run a hand-in in the sandbox and write its trace (debugging)")
    cap.add_argument("path", type=Path)
    cap.add_argument("--out", type=Path, required=True, help="folder for trace.json and arrays/")
    cap.add_argument("--data-dir", type=Path)

    o = sub.add_parser("override", help="correct one verdict of a graded hand-in (instructors)",
                       description="Replace the automatic verdict of RULE for STUDENT in OUT's gradebook, then "
                       "rewrite that report, the summary, review.html and every export (nothing is re-run). "
                       "The override survives re-grades; setting it again confirms it.")
    o.add_argument("out", type=Path, help="the folder `grader grade` wrote (holds gradebook.sqlite)")
    o.add_argument("student", help="the hand-in id, as in the summary")
    o.add_argument("rule", nargs="?", help="the rule id, e.g. split_20")
    o.add_argument("--status", choices=["pass", "warn", "fail", "skip"], help="the corrected status")
    o.add_argument("--points", type=float, metavar="X", help="points instead of the rubric's for that status")
    o.add_argument("--note", help="why (Spanish; the student reads it as 'Revisado por el profesor: ...')")
    o.add_argument("--clear", metavar="RULE", help="remove the override of RULE (back to the automatic verdict)")
    o.add_argument("--rubric", type=Path, help="rubric file, only for gradebooks that did not store theirs")
    o.add_argument("--no-pdf", action="store_true", help="do not rewrite the PDF report")

    r = sub.add_parser("review", help="list verdicts and open review items of graded hand-ins (instructors)")
    r.add_argument("out", type=Path, help="the folder `grader grade` wrote (holds gradebook.sqlite)")
    r.add_argument("student", nargs="?", help="one hand-in: all its verdicts, overrides marked")
    r.add_argument("--rubric", type=Path, help="rubric file, only for gradebooks that did not store theirs")
    e = sub.add_parser("export", help="fill the course platform's grade file from a graded batch",
                       description="Fill the grade file downloaded from Moodle or Canvas with the grades of a "
                       "batch graded into OUT. Only the grade (and feedback comment) cells change.")
    platforms = e.add_subparsers(dest="platform", required=True, metavar="PLATFORM")

    def platform(name: str, what: str, written: str, option: str, source: str) -> argparse.ArgumentParser:
        sp = platforms.add_parser(name, help=what, description=f"Writes {written} to upload back.")
        sp.add_argument("out", type=Path, metavar="OUT", help="the folder `grader grade` wrote")
        sp.add_argument(option, type=Path, required=True, metavar="FILE", help=source)
        sp.add_argument("--output", type=Path, metavar="FILE", help="where to write the filled CSV")
        return sp

    platform("moodle", "Moodle grading worksheet + feedback-files ZIP",
             "OUT/moodle_worksheet.csv (the worksheet filled) and OUT/moodle_feedback.zip (one informe.pdf "
             "per participant)", "--worksheet", "the grading worksheet CSV downloaded from the assignment")
    platform("canvas", "Canvas gradebook CSV",
             "OUT/canvas_gradebook.csv (the exported gradebook, the assignment's column in points)",
             "--gradebook", "the gradebook CSV exported from Canvas").add_argument(
        "--assignment", metavar="NAME_OR_ID", help="the assignment column, when the gradebook has several")

    d = sub.add_parser("data", help="make Fashion-MNIST available offline (seeds Keras' cache)")
    d.add_argument("--data-dir", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    signal.signal(signal.SIGTERM, _interrupt)  # a killed batch stops like Ctrl-C: children reaped
    try:
        return COMMANDS[args.command](args)
    except GraderError as e:
        print(f"grader: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _cluster_spec(text: str):
    from grader.cluster import parse_spec  # imports no Dask

    try:
        return parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):  # NaN fails `>= 0` too
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (0 = no limit), not {text!r}")
    return value


def _options(args: argparse.Namespace, budget_name: str):
    overrides = {"cell_timeout_s": args.cell_timeout, "total_timeout_s": args.total_timeout,
                 "memory_mb": args.memory_mb, "disk_mb": args.disk_mb, "inodes": args.inodes}
    budget = {k: v for k, v in (("time_budget_s", args.retrain_budget), ("memory_mb", args.retrain_memory_mb),
                                ("check_s", getattr(args, "time_limit", None)))  # `check` only
              if v is not None}
    return GradeOptions(
        out_dir=args.out,
        budget=Budget(name=budget_name, **budget),
        limits=Limits(**{k: v for k, v in overrides.items() if v is not None}),
        rubric_path=args.rubric,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        seed=args.seed,
        pdf=not args.no_pdf,
    )


def cmd_grade(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise GraderError(f"{args.path}: no such file or folder")
    from grader.batch import grade_batch

    opts = _options(args, args.budget)
    dispatch = None
    if args.cluster is not None:
        from dataclasses import replace

        from grader.cluster import ClusterDispatch, SlurmOptions

        slurm = SlurmOptions(cores=args.slurm_cores, memory=args.slurm_memory, walltime=args.slurm_walltime)
        dispatch = ClusterDispatch(replace(args.cluster, slurm=slurm), opts, progress=not args.quiet,
                                   timeout_s=args.cluster_timeout)
    s = grade_batch(args.path, opts, jobs=args.jobs, force=args.force, progress=not args.quiet,
                    csv_dialect=args.csv_dialect, dispatch=dispatch)
    print(f"graded {len(s.graded)}, unchanged {len(s.skipped)}, grader errors {len(s.failed)}"
          f" -> {s.out_dir / 'index.html'}")
    from grader.load import file_stem

    for student in s.failed:
        print(f"  grader error on {student}: see {s.out_dir / 'logs' / (file_stem(student) + '.log')}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise GraderError(f"{args.path}: no such file or folder")
    from grader.load import load_submission
    from grader.pipeline import grade_submission
    from grader.report import write_exports
    from grader.retrain.progress import TerminalProgress

    sub = load_submission(args.path)
    result = grade_submission(sub, _options(args, "full" if args.full else "quick"), progress=TerminalProgress())
    print_checklist(result, args.out)
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    if args.ci:
        write_exports([result], args.out)
        print_annotations(result, sub)
    return 1 if result.failed_errors or result.meta.get("status") == "error" else 0


def print_checklist(result, out_dir: Path) -> None:
    from grader.report.view import STATUS_ICONS, unverified_points

    print(f"\nEntrega: {result.student}    Nota: {result.score:g} / {result.max_score:g}"
          f"  (presupuesto {result.meta.get('budget', '?')})")
    for e in result.errors:
        if e.get("stage") in ("load", "capture", "grader"):
            icon = "–" if e.get("code") == "check_time" else "✗"  # the check's own bound, not a fault
            print(f"  {icon} {e['message']}")
    for ex in result.exercises:
        print(f"\n  {ex.title}: {ex.points:g} / {ex.max_points:g}")
        for v in (v for v in result.rules if v.exercise == ex.exercise):
            print(f"    {STATUS_ICONS.get(v.status, '?')} {v.id}: {v.message}")
    others = [v for v in result.rules if v.exercise not in {ex.exercise for ex in result.exercises}]
    if others:
        print("\n  General:")
        for v in others:
            print(f"    {STATUS_ICONS.get(v.status, '?')} {v.id}: {v.message}")
    cuts = result.meta.get("budget_cuts") or []
    if cuts:
        print("\n  Recortado por el presupuesto:")
        for line in cuts:
            print(f"    - {line}")
        if unverified := unverified_points(result):
            print(f"    {unverified:g} punto(s) de la nota son de comprobaciones omitidas, que pueden deberse a "
                  "este recorte: `grader check --full` las hace todas")
    from grader.report import report_filename

    print(f"\nInforme: {out_dir / report_filename(result.student)}")


def print_annotations(result, sub) -> None:
    """GitHub Actions workflow commands: one ::error / ::warning per failing rule."""
    first_file = sub.files[0] if sub.files else str(sub.path)
    for v in result.rules:
        if v.status not in ("fail", "warn"):
            continue
        level = "error" if v.status == "fail" and v.severity == "error" else "warning"
        ev = v.evidence[0] if v.evidence else None
        where = f"file={first_file}"
        position = sub.file_position(ev.cell, ev.line) if ev is not None else None
        if position is not None:
            where = f"file={position[0] or first_file}"
            if sub.kind != "ipynb":
                where += f",line={position[1]}"
        message = v.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::{level} {where},title={v.id}::{message}")


def cmd_capture(args: argparse.Namespace) -> int:
    from grader.capture.runner import capture_submission
    from grader.load import load_submission
    from grader.pipeline import annotate_rows
    from grader.source.static import analyze

    sub = load_submission(args.path)
    if sub.load_error:
        raise GraderError(f"{args.path}: {sub.load_error.message}")
    args.out.mkdir(parents=True, exist_ok=True)
    trace = capture_submission(sub, args.out, data_dir=args.data_dir)
    trace.static = analyze(sub)
    annotate_rows(trace, args.out / "arrays", args.data_dir)
    trace.save(args.out / "trace.json")
    print(f"{len(trace.fits)} fits, {len(trace.evals)} evaluate/predict, {len(trace.errors)} cell errors,"
          f" status {trace.status} -> {args.out / 'trace.json'}")
    return 0


def cmd_override(args: argparse.Namespace) -> int:
    from grader.review.overrides import clear_override, set_override

    pdf = False if args.no_pdf else None
    if args.clear:
        if args.rule or args.status or args.note or args.points is not None:
            raise GraderError("--clear RULE takes no other rule, --status, --points or --note")
        clear_override(args.out, args.student, args.clear, rubric_path=args.rubric, pdf=pdf)
        print(f"{args.student}: override of {args.clear} removed; reports rewritten in {args.out}")
        return 0
    if not args.rule or not args.status or args.note is None:
        raise GraderError("give RULE, --status and --note (or --clear RULE)")
    o = set_override(args.out, args.student, args.rule, args.status, args.note, points=args.points,
                     rubric_path=args.rubric, pdf=pdf)
    print(f"{o.student}: {o.rule} {o.auto_status or '-'} -> {o.status}; reports rewritten in {args.out}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from grader.review.overrides import corrected_results, open_gradebook, resolve_student
    from grader.review.queue import queue_lines, review_lines, review_queue

    with open_gradebook(args.out) as book:
        if args.student:
            resolve_student(book, args.student)
        results = corrected_results(book, [args.student] if args.student else None, args.rubric)
    queue = review_queue(results, args.out)
    lines = review_lines(results[0], queue[args.student]) if args.student else queue_lines(results, queue)
    print("\n".join(lines))
def cmd_export(args: argparse.Namespace) -> int:
    from grader.report.platforms import export_canvas, export_moodle
    from grader.review.overrides import exported_results

    results = exported_results(args.out)  # the instructor's overrides applied
    if args.platform == "moodle":
        report = export_moodle(results, args.out, args.worksheet, args.output)
    else:
        report = export_canvas(results, args.out, args.gradebook, args.output, args.assignment)
    for warning in report.warnings:
        print(f"grader: warning: {warning}", file=sys.stderr)
    print(f"filled {report.filled} row(s) -> " + ", ".join(str(p) for p in report.written))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from grader.data import load_fashion_mnist, seed_keras_cache

    data = load_fashion_mnist(args.data_dir)
    folder = seed_keras_cache(args.data_dir)
    print(f"Fashion-MNIST: {len(data.x_train)} train / {len(data.x_test)} test from {data.source};"
          f" Keras cache ready at {folder}")
    return 0


COMMANDS = {"grade": cmd_grade, "check": cmd_check, "capture": cmd_capture, "export": cmd_export,
            "override": cmd_override, "review": cmd_review, "data": cmd_data}
