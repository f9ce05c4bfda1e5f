"""The report and the class summary as headless Chromium shows them: DOM, injected scripts, layout on phone width."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from grader.report import render_report, render_summary
from grader.report.sample import broken_result, sample_result

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]
# What a hostile hand-in could put in its id or its code: if any of this ran, it would leave a mark in the DOM.
ATTACK = (
    "<script>document.title='PWNED';document.body.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"> {{ 7*7 }} </pre><b id=injected>x</b>"
)
# Headless Chromium will not make a window narrower than 500px, so a phone is emulated by an iframe of
# the phone's width; the frame page reports the laid-out width and the row order of the summary table.
PHONE = (390, 844)
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{src}" style="border:0;width:{w}px;height:{h}px;display:block"></iframe>
<script>
window.addEventListener("load", function () {{
  var d = document.getElementById("f").contentDocument;
  {click}
  document.body.setAttribute("data-scroll-width", d.documentElement.scrollWidth);
  document.body.setAttribute("data-title", d.title);
  document.body.setAttribute("data-order", Array.prototype.map.call(
    d.querySelectorAll("#students tbody tr"), function (r) {{ return r.cells[0].textContent.trim(); }}).join("|"));
}});
</script></body></html>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # file:// pages may read each other: the phone frame below measures the page inside its iframe.
        "--hide-scrollbars", "--allow-file-access-from-files", f"--user-data-dir={tmp / 'profile'}", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)


def dump_dom(tmp: Path, page: Path, width: int = 1280, height: int = 900) -> str:
    return chromium(tmp, f"--window-size={width},{height}", "--dump-dom", page.as_uri()).stdout


def screenshot(tmp: Path, page: Path, name: str, width: int, height: int) -> Image.Image:
    target = tmp / name
    chromium(tmp, f"--screenshot={target}", f"--window-size={width},{height}", page.as_uri())
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(target)
    assert image.size == (width, height)
    return image


def framed(page: Path, width: int, height: int, *, click_header: int | None = None) -> Path:
    """A page showing `page` in a width x height iframe; optionally clicks a summary table header."""
    click = "" if click_header is None else f'd.querySelectorAll("#students thead th")[{click_header}].click();'
    frame = page.with_name(f"frame-{width}-{click_header}-{page.name}")
    frame.write_text(FRAME.format(src=quote(page.name), w=width, h=height, click=click), encoding="utf-8")
    return frame


def frame_facts(tmp: Path, page: Path, width: int, height: int, **kw) -> dict:
    dom = dump_dom(tmp, framed(page, width, height, **kw), max(width, 500), height)
    return Elements(dom).first("body")


def phone_screenshot(tmp: Path, page: Path, name: str) -> Image.Image:
    w, h = PHONE
    shot = screenshot(tmp, framed(page, w, h), name, 500, h)
    return shot.crop((0, 0, w, h))


class Elements(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    def first(self, tag: str) -> dict:
        return next(a for t, a in self.found if t == tag)


def assert_not_blank(image: Image.Image, size: tuple[int, int]) -> None:
    assert image.size == size
    grey = image.convert("L").resize((size[0] // 4, size[1] // 4))
    pixels = list(grey.getdata())
    assert sum(1 for p in pixels if p < 160) > 0.01 * len(pixels)  # text and plots, not a white page
    assert len(set(pixels)) > 20


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    hostile = sample_result("alumno" + ATTACK, excerpt=ATTACK)
    hostile.rules[0].message = "Mensaje " + ATTACK
    results = [sample_result(), hostile, broken_result()]
    reports = {r.student: render_report(r, out, pdf=False).html for r in results}
    return out, reports, render_summary(results, out)


def test_report_dom_shows_attack_as_text(site, tmp_path):
    _, reports, _ = site
    page = next(p for s, p in reports.items() if s.startswith("alumno"))
    dom = dump_dom(tmp_path, page)
    elements = Elements(dom)
    assert "data-pwned" not in elements.first("body")
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert title.startswith("Informe · alumno&lt;script&gt;document.title='PWNED'")  # text, not a retitled page
    assert not any(a.get("id") == "injected" for _, a in elements.found)
    assert not any(t == "script" for t, _ in elements.found)
    assert not any(t == "img" and a.get("src") == "x" for t, a in elements.found)
    assert "{{ 7*7 }}" in dom and "7.5 / 10" in dom


def test_report_screenshots_desktop_and_phone(site, tmp_path):
    _, reports, _ = site
    page = reports["garcia_lopez_maria"]
    assert_not_blank(screenshot(tmp_path, page, "desktop.png", 1280, 900), (1280, 900))
    assert_not_blank(phone_screenshot(tmp_path, page, "phone.png"), PHONE)
    for student, path in reports.items():
        facts = frame_facts(tmp_path, path, *PHONE)
        assert facts["data-title"].startswith("Informe · ")  # the frame really holds the report
        width = int(facts["data-scroll-width"])
        assert width <= PHONE[0], f"{student}: page is {width}px wide on a {PHONE[0]}px phone"


def test_summary_sorts_on_header_click_and_fits_phone(site, tmp_path):
    _, _, index = site
    order = frame_facts(tmp_path, index, 1280, 900)["data-order"].split("|")
    assert order[0].startswith("alumno<script>")  # name order before any click; the id shows as text
    assert order[1:] == ["garcia_lopez_maria", "perez_ruiz_juan"]
    order = frame_facts(tmp_path, index, 1280, 900, click_header=1)["data-order"].split("|")
    assert order[0] == "perez_ruiz_juan"  # "Nota" ascending: 0 / 10 first
    dom = dump_dom(tmp_path, index)
    assert "Resumen de la clase" in dom and "7.5</strong> / 10" in dom
    assert_not_blank(screenshot(tmp_path, index, "summary.png", 1280, 900), (1280, 900))
    assert int(frame_facts(tmp_path, index, *PHONE)["data-scroll-width"]) <= PHONE[0]
    assert_not_blank(phone_screenshot(tmp_path, index, "summary-phone.png"), PHONE)
