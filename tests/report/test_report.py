"""Reports rendered from realistic GradeResults: HTML structure, embedded plots, escaping, PDF, summary, exports."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest
from PIL import Image
from pypdf import PdfReader

from grader.report import render_plots, render_report, render_summary, report_filename, write_exports
from grader.report.exports import CSV_COLUMNS
from grader.report.plots import _acc_curves
from grader.report.sample import HOSTILE, broken_result, sample_result
from grader.report.view import meta_rows
from grader.results import Evidence

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects what the checks need: tags seen, <img> sources, visible text, text inside <pre>."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.pre: list[str] = []
        self._in_pre = 0
        self._skip = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        self._in_pre += tag == "pre"
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        if tag in ("dt", "dd", "td", "th", "li", "p", "div", "h1", "h2", "pre", "tr"):
            self.text.append(" ")  # block boundaries separate words, as a browser shows them
        self._in_pre -= tag == "pre" and self._in_pre > 0
        self._skip -= tag in ("style", "script") and self._skip > 0

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._in_pre:
            self.pre.append(data)

    @property
    def all_text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text))

    def srcs(self, tag: str) -> list[str]:
        return [a.get("src") or "" for t, a in self.attrs if t == tag]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = sample_result()
    files = render_report(result, out, pdf=True)
    return result, files, Page(files.html.read_text(encoding="utf-8"))


def test_report_header_grade_rules_and_locations(full):
    result, files, page = full
    assert files.html == files.html.parent / "garcia_lopez_maria.html"
    text = page.all_text
    assert "garcia_lopez_maria" in text and "7.5 / 10" in text
    assert "Puntos por ejercicio" in text and "Ejercicio 2. Inicialización de parámetros" in text
    for s in ("2 / 2.5", "1.5 / 2.5", "2.25 / 2.5"):  # per-exercise points from ExerciseScore
        assert s in text
    assert "Aspectos generales (protocolo, ejecución y análisis) descuentos -0.75" in text  # max 0: deductions
    for icon in ("✓", "✗", "⚠", "–"):
        assert icon in text
    for v in result.rules:  # every verdict's Spanish feedback is shown
        assert re.sub(r"\s+", " ", v.message) in text
    # Evidence cell 11 (0-based) is shown as "celda 12"; the excerpt sits in a <pre>.
    assert "En celda 12, línea 2:" in text
    assert any("validation_data=(x_test, y_test)" in p for p in page.pre)
    assert "validation = x_test" in text and "rows_test = 10000" in text  # evidence values worth showing
    assert "text = val_accuracy" not in text  # ...but not the saved line twice


def test_report_tables_facts_and_errors(full):
    _, _, page = full
    text = page.all_text
    assert "Entrenamientos reproducidos por el corrector" in text
    assert "fuera de presupuesto: épocas limitadas a 60 (máximo del corrector)" in text  # says why, in Spanish
    assert "sin entrenar" not in text  # a capped run was trained
    assert "ex4 final 20/20 89.7 % 89.7 % 89.1 % no ok" in text  # test accuracy only for the final run
    assert "Reproducido vs. reportado" in text and "93.1 % 89.7 % -3.4 pp" in text
    assert "Semilla 20251" in text and "keras 3.15.1" in text and "total 164.1" in text
    assert "Problemas al cargar o ejecutar la entrega" in text
    assert "Error en el código, celda 10, línea 1:" in text and "NameError" in text


def test_timings_total_not_added_twice():
    rows = dict(meta_rows({"timings": {"capture_s": 21.29, "retrain_s": 236.9, "total_s": 260.2}}))
    assert rows["Tiempos (s)"] == "capture_s 21.29, retrain_s 236.9, total_s 260.2"


def test_report_is_self_contained_with_valid_pngs(full):
    _, _, page = full
    imgs = page.srcs("img")
    assert len(imgs) == 4  # ex1..ex4, one comparison figure each
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == PNG_MAGIC
        with Image.open(io.BytesIO(raw)) as im:
            im.verify()
        with Image.open(io.BytesIO(raw)) as im:
            assert im.size[0] > 800 and im.size[1] > 300
    assert "script" not in page.tags and "link" not in page.tags
    for _, attrs in page.attrs:  # nothing fetched from elsewhere
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"^(https?:|//|file:)", value), value


def test_plots_only_for_runs_with_history_and_legacy_keys(full):
    result = sample_result()
    relu = next(r for r in result.runs if r.label == "ReLU")
    over_budget = next(r for r in result.runs if r.status == "budget")  # ex3, no history
    result.runs = [relu, over_budget]
    assert list(render_plots(result)) == ["ex1"]
    assert _acc_curves({"acc": [0.5, 0.6], "val_acc": [0.4, 0.55]}) == ([0.5, 0.6], [0.4, 0.55])
    alts = [a.get("alt") or "" for t, a in full[2].attrs if t == "img"]
    assert all("Curvas de precisión y pérdida" in a for a in alts) and "Ejercicio 4" in alts[-1]


def test_pdf_pages_match_and_render(full, tmp_path):
    _, files, _ = full
    assert files.pdf is not None and files.pdf.stat().st_size > 10_000
    reader = PdfReader(str(files.pdf))
    assert len(reader.pages) == files.pdf_pages
    assert 3 <= files.pdf_pages <= 7  # four figures and the tables do not fit on fewer pages
    first = reader.pages[0].extract_text()
    assert "garcia_lopez_maria" in first and "7.5 / 10" in first
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(files.pdf), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == files.pdf_pages
    with Image.open(pngs[0]) as im:
        grey = im.convert("L")
        dark = sum(1 for px in grey.getdata() if px < 200)
        assert dark > 0.01 * grey.width * grey.height  # not a blank page

    small = render_report(broken_result(), tmp_path, pdf=True)
    assert small.pdf_pages is not None and small.pdf_pages < files.pdf_pages
    assert "No se pudo evaluar" in PdfReader(str(small.pdf)).pages[0].extract_text()


def test_hostile_student_content_is_text_not_markup(tmp_path):
    result = sample_result("alumno" + HOSTILE, excerpt=HOSTILE)
    result.rules[0].message = "Mensaje con " + HOSTILE
    result.errors[0]["message"] = HOSTILE
    result.runs[0].label = HOSTILE  # run labels come from the student's code too
    result.runs = result.runs[:1]
    files = render_report(result, tmp_path, pdf=False)
    assert files.html.parent == tmp_path and "/" not in files.html.name and "<" not in files.html.name
    html = files.html.read_text(encoding="utf-8")
    page = Page(html)
    assert "script" not in page.tags and "b" not in page.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    text = page.all_text
    assert "alumno<script>alert(1)</script> {{ 7*7 }}" in text  # shown verbatim, not evaluated by Jinja
    assert "{{ 7*7 }}" in "".join(page.pre) and "</pre><b>x</b>" in "".join(page.pre)


def test_user_template_folder_is_searched_first(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.html").write_text(
        '{% extends "default/report.html" %}{% block title %}Curso 2025 · {{ student }}{% endblock %}',
        encoding="utf-8",
    )
    result = sample_result()
    result.runs = []  # plots are not what this test is about
    files = render_report(result, tmp_path / "out", pdf=False, template_dir=tpl)
    html = files.html.read_text(encoding="utf-8")
    assert "<title>Curso 2025 · garcia_lopez_maria</title>" in html
    assert "7.5 / 10" in html  # the shipped body is still there


@pytest.fixture(scope="module")
def batch():
    bad = sample_result("ruiz_ana")
    bad.score = 3.25
    bad.rules[0].evidence.append(Evidence(cell=2, excerpt="x = 1\x00\x1b[31m"))  # control chars survive XML
    return [sample_result(), bad, broken_result(), sample_result("alumno" + HOSTILE, excerpt=HOSTILE)]


def test_summary_lists_students_histogram_and_rule_counts(batch, tmp_path):
    written = render_report(batch[2], tmp_path, pdf=False).html  # one is enough to prove links resolve
    evil = batch[3].student
    path = render_summary(batch, tmp_path, report_links={"ruiz_ana": "otra/ruiz.html", evil: "javascript:alert(1)"})
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    text = page.all_text
    assert path == tmp_path / "index.html"
    assert "Resumen de la clase" in text and "Entregas: 4" in text
    hrefs = [a.get("href") for t, a in page.attrs if t == "a"]
    assert "otra/ruiz.html" in hrefs and not any(h and h.startswith("javascript") for h in hrefs)
    assert "review.html" in hrefs  # the "to review" queue
    # Default links point at render_report's files (review.html is the queue page, #anchors its sections).
    local = [unquote(h) for h in hrefs if h and "/" not in h and not h.startswith("review.html")]
    assert sorted(local) == sorted(report_filename(r.student) for r in batch if r.student != "ruiz_ana")
    assert written.name in local
    assert "3.25 / 10" in text and "7.5 / 10" in text
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    bars = ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}rect")
    assert len(bars) == 10 and [b.find("{http://www.w3.org/2000/svg}title").text for b in bars][7] == "7–8: 2"
    assert "split_20 ex1 " not in text and "split_20 general 3 / 4" in text  # failed in 3 of 4 hand-ins
    assert html.count("<script>") == 1  # the sorting script only; the hostile id is escaped
    assert "alumno<script>alert(1)</script>" in text


def test_exports_parse_and_agree(batch, tmp_path):
    paths = write_exports(batch, tmp_path)
    raw = paths["grades_csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the accents right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 5
    by_student = {r[0]: dict(zip(CSV_COLUMNS, r)) for r in rows[1:]}
    maria = by_student["garcia_lopez_maria"]
    assert (maria["score"], maria["max_score"], maria["ex3"], maria["general"]) == ("7.5", "10", "2.25", "-0.75")
    assert maria["failed_rules"] == "split_20;ex2_random_normal" and "Fallos: split_20 (general)" in maria["feedback"]
    assert by_student["perez_ruiz_juan"]["ex1"] == "" and by_student["perez_ruiz_juan"]["errors"] == "1"

    data = json.loads(paths["results_json"].read_text(encoding="utf-8"))
    assert [r["student"] for r in data["results"]][:2] == ["alumno" + HOSTILE, "garcia_lopez_maria"]
    assert data["results"][1]["runs"][0]["history"]["val_accuracy"][0] == 0.45

    root = ET.parse(paths["junit_xml"]).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 4
    maria_suite = next(s for s in suites if s.get("name") == "garcia_lopez_maria")
    assert (maria_suite.get("failures"), maria_suite.get("skipped"), maria_suite.get("errors")) == ("2", "1", "1")
    cases = {c.get("name"): c for c in maria_suite.findall("testcase")}
    assert cases["split_20"].find("failure") is not None and "celda 12" in cases["split_20"].find("failure").text
    assert cases["ex1_analysis"].find("system-out").text.startswith("AVISO:")
    assert cases["ex3_extra"].find("skipped") is not None and len(cases["ex1_compare"]) == 0
    assert cases["load_and_run"].find("error") is not None

    gs = json.loads((paths["gradescope_dir"] / "garcia_lopez_maria" / "results.json").read_text(encoding="utf-8"))
    assert gs["score"] == 7.5 and gs["max_score"] == 10.0
    assert sum(t["score"] for t in gs["tests"]) == pytest.approx(7.5)
    statuses = {t["name"]: t["status"] for t in gs["tests"]}
    assert statuses["split_20"] == "failed" and statuses["ex1: ex1_analysis"] == "passed"
    assert all(set(t) == {"name", "score", "max_score", "status", "output"} for t in gs["tests"])
    assert len(list(paths["gradescope_dir"].iterdir())) == 4


def test_diverged_run_nan_and_huge_loss(tmp_path):
    result = sample_result()
    sgd = next(r for r in result.runs if r.label == "SGD")
    sgd.history = {"loss": [2.3, 55.0, 1e12, float("nan")], "acc": [0.3, 0.1, 0.1, float("nan")],
                   "val_loss": [2.2, float("inf"), float("nan"), float("nan")], "val_acc": [0.2, 0.1, 0.1, 0.1]}
    sgd.best_val_accuracy, sgd.last_val_accuracy = float("nan"), 0.1
    plots = render_plots(result)
    assert base64.b64decode(plots["ex3"].split(",", 1)[1])[:8] == PNG_MAGIC
    text = Page(render_report(result, tmp_path, pdf=False).html.read_text(encoding="utf-8")).all_text
    assert "ex3 SGD 10/10 — 10.0 %" in text  # NaN shown as a dash, not "nan %"
    data = json.loads(write_exports([result], tmp_path)["results_json"].read_text(encoding="utf-8"))
    history = next(r for r in data["results"][0]["runs"] if r["label"] == "SGD")["history"]
    assert history["loss"][2:] == [1e12, None] and history["val_loss"][1] is None


def test_report_filenames_stay_inside_and_do_not_collide():
    assert report_filename("garcia_lopez_maria") == "garcia_lopez_maria.html"
    assert report_filename("José Núñez", suffix="") != report_filename("José_Núñez", suffix="")
    for hostile in ("../../etc/passwd", "a/b", "..", "", "\\x00"):
        name = report_filename(hostile)
        assert "/" not in name and not name.startswith(".") and name.endswith(".html")


def test_pdf_failure_keeps_the_html(tmp_path):
    result = sample_result()
    result.runs = []
    (tmp_path / "garcia_lopez_maria.pdf").mkdir()  # something in the way of the PDF
    files = render_report(result, tmp_path, pdf=True)
    assert files.html.is_file() and files.pdf is None and files.pdf_pages is None
    assert files.pdf_error and "IsADirectoryError" in files.pdf_error


def test_summary_names_rules_by_their_rubric_title(batch, tmp_path):
    titled = [dataclasses.replace(r, rules=[dataclasses.replace(v, title="Validación con el 20% de x_train")
                                            if v.id == "split_20" else v for v in r.rules]) for r in batch]
    page = Page(render_summary(titled, tmp_path).read_text(encoding="utf-8"))
    assert "Validación con el 20% de x_train split_20" in page.all_text  # the title, then the id in small print
