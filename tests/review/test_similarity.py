"""Similarity between hand-ins: the sample hand-ins, four honest solutions and disguised copies of
them (renamed, re-commented, reordered, one exercise copied, results pasted), compared for real."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from grader.errors import ConfigError
from grader.load import find_submissions, load_submission
from grader.report.summary import render_summary
from grader.review.fingerprint import fingerprint_stream, normalise
from grader.review.similarity import compare_batch
from grader.review.similarity_report import similarity_step, write_similarity
from grader.rubric import read_rubric
from grader.rules import load_rubric
from scripts.disguise import build_batch, notebook, write
from scripts.honest_handins import HONEST

SPEC = load_rubric().similarity


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[Path, set[frozenset[str]], dict[str, set[str]]]:
    out = tmp_path_factory.mktemp("similarity") / "entregas"
    must_flag, works = build_batch(out)
    return out, must_flag, works


@pytest.fixture(scope="module")
def pairs(batch, tmp_path_factory) -> dict[frozenset[str], object]:
    out, _, _ = batch
    subs = find_submissions(out, workdir=tmp_path_factory.mktemp("extracted"))
    everything = dataclasses.replace(SPEC, report_from=0.0, min_shared=1)  # list every pair, to see margins
    return {frozenset((p.a, p.b)): p for p in compare_batch(subs, everything)}


def test_normalised_code_ignores_names_comments_whitespace_and_literals():
    a = 'def crear(act="relu"):\n    """Red nueva."""\n    return Dense(128, activation=act)  # capa\n'
    b = "def build(a='sigmoid'):\n\n    return Dense(64,\n                 activation=a)\n"
    c = "def build(a='sigmoid'):\n    return Dense(64, activation=a)[0]\n"
    text = [" ".join(t.text for t in normalise(src, 0)) for src in (a, b, c)]
    assert text[0] == text[1] == "def N ( N = S ) : return N ( 0 , N = N )"
    assert text[2] != text[0]


def test_prose_in_a_code_cell_and_magics_still_give_tokens():
    tokens = normalise("%matplotlib inline\nEsto es texto, no (código\nmodel.fit(x, y)", 3)
    assert [t.text for t in tokens][:3] == ["N", "N", "N"] and all(t.cell == 3 for t in tokens)
    assert tokens[-1].line == 3


def test_winnowing_finds_every_shared_run_of_k_plus_w_tokens():
    """The algorithm's guarantee, on real code: any run of kgram + window - 1 tokens of correct_full
    dropped into another hand-in leaves a fingerprint of the run among the other's fingerprints."""
    k, w = SPEC.kgram, SPEC.window
    source = load_submission(Path("submissions/correct_full.ipynb"))
    other = load_submission(Path("submissions/legacy_keras2.ipynb"))
    stream = [t for c in source.code_cells for t in normalise(c.source, c.index)]
    base = [t for c in other.code_cells for t in normalise(c.source, c.index)]
    checked = 0
    for start in range(0, len(stream) - (k + w), 37):
        run = stream[start:start + k + w - 1]
        run_hashes = {f.hash for f in fingerprint_stream(run, k, w)}
        assert len(run_hashes) == 1  # one window: its minimum
        mixed = base[:100] + run + base[100:]
        assert run_hashes <= {f.hash for f in fingerprint_stream(mixed, k, w)}
        checked += 1
    assert checked > 10


def test_every_copy_is_flagged_and_no_honest_pair_is(batch, pairs):
    _, must_flag, works = batch
    missed = sorted(tuple(sorted(p)) for p in must_flag if not (p in pairs and pairs[p].flagged))
    assert not missed, missed
    honest = [frozenset((a, b)) for a in works for b in works if a < b and not works[a] & works[b]]
    assert len(honest) > 500
    wrongly = sorted(tuple(sorted(p)) for p in honest if p in pairs and pairs[p].flagged)
    assert not wrongly, wrongly
    # The margins as measured: honest pairs stay well under both code thresholds.
    worst = max((pairs[p] for p in honest if p in pairs), key=lambda x: x.longest_region_tokens)
    assert worst.longest_region_tokens <= 0.7 * SPEC.flag_region_tokens, worst
    assert max(pairs[p].code_score for p in honest if p in pairs) < 0.5 * SPEC.flag_score


def test_each_kind_of_copy_is_found_for_its_own_reason(pairs):
    def get(a, b):
        return pairs[frozenset((a, b))]

    for how in ("renombrada", "comentada", "reordenada", "disfrazada"):
        for name in HONEST:
            assert get(name, f"copia_{how}_{name}").code_score >= 0.85, (how, name)
    one_exercise = get("ej3_de_d_en_c", "estilo_d")  # only ex. 3 (five lines) is D's
    assert one_exercise.code_score < SPEC.flag_score and one_exercise.longest_region_tokens >= SPEC.flag_region_tokens
    script = get("single_script", "copia_disfrazada_single_script")  # places named by file lines
    assert script.flagged and re.fullmatch(r"single_script\.py, líneas \d+–\d+", script.regions[0].b_where
                                           if script.a == "copia_disfrazada_single_script" else script.regions[0].a_where)
    pasted = get("salidas_de_correct_full", "correct_full")  # D's code, correct_full's printed results
    assert pasted.code_score == 0 and pasted.shared_output_lines >= 10 and pasted.flagged


def test_template_code_does_not_count(tmp_path):
    """Two honest hand-ins share the whole template (imports, data, plot helpers): with the template
    known they are not flagged; counted as their own code, they would be."""
    for name in ("estilo_a", "estilo_b"):
        write(notebook(HONEST[name]), tmp_path / f"{name}.ipynb")
    subs = find_submissions(tmp_path)
    assert not any(p.flagged for p in compare_batch(subs, SPEC))
    no_template = dataclasses.replace(SPEC, template=None)
    assert [p.flagged for p in compare_batch(subs, no_template)] == [True]


def test_without_a_template_the_code_most_of_the_batch_shares_is_the_template(tmp_path):
    for name, cells in HONEST.items():
        write(notebook(cells), tmp_path / f"{name}.ipynb")
    for sample in ("correct_full.ipynb", "legacy_keras2.ipynb"):
        (tmp_path / sample).write_bytes(Path("submissions", sample).read_bytes())
    subs = find_submissions(tmp_path)
    majority = dataclasses.replace(SPEC, template=None, common_min_handins=6)
    assert len(subs) == 6 and not any(p.flagged for p in compare_batch(subs, majority))
    too_small = dataclasses.replace(majority, common_min_handins=7)
    assert any(p.flagged for p in compare_batch(subs, too_small))


def test_similarity_files_rank_pairs_show_excerpts_and_escape_student_code(tmp_path):
    cells = [(kind, src.replace("red_densa", "red_</pre><script>alert(1)</script>"))
             for kind, src in HONEST["estilo_a"]]
    write(notebook(cells), tmp_path / "in" / "a.ipynb")
    write(notebook(cells), tmp_path / "in" / "<i>copia.ipynb")
    write(notebook(HONEST["estilo_c"]), tmp_path / "in" / "c.ipynb")
    files = write_similarity(find_submissions(tmp_path / "in"), SPEC, tmp_path / "out")
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert [(d["a"], d["b"], d["flagged"]) for d in data] == [("<i>copia", "a", True)]
    assert data[0]["score"] == 1.0 and {"a", "b", "score", "flagged"} <= set(data[0])
    html = files.html.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "&lt;i&gt;copia" in html and "<i>copia" not in html and re.search(r"copia · celda \d+, línea \d+ a celda \d+, línea \d+", html)
    index = render_summary([], tmp_path / "out", similarity={"href": "similarity.html", "pairs": 1, "flagged": 1})
    assert 'href="similarity.html"' in index.read_text(encoding="utf-8")


def test_rubric_similarity_section_is_validated_and_not_in_the_digest(tmp_path):
    data = yaml.safe_load(Path("rubrics/trabajo2.yaml").read_text(encoding="utf-8"))
    base = read_rubric(Path("rubrics/trabajo2.yaml"))
    assert base.similarity.template and base.similarity.template.name == "trabajo2_plantilla.ipynb"

    def variant(**changes):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({**data, "similarity": {**data["similarity"], **changes}}), encoding="utf-8")
        return read_rubric(path)

    assert variant(flag_score=0.9).digest == base.digest  # a flag threshold re-grades nothing
    for changes, key in [({"kgram": 2.5}, "similarity.kgram"), ({"flag_score": 2}, "similarity.flag_score"),
                         ({"template": "nope.ipynb"}, "similarity.template"), ({"colour": 1}, "similarity.colour")]:
        with pytest.raises(ConfigError, match=f":{key}:"):
            variant(**changes)


def test_a_failing_similarity_step_costs_only_its_report(tmp_path, caplog):
    write(notebook(HONEST["estilo_a"]), tmp_path / "in" / "a.ipynb")
    (tmp_path / "in" / "roto.ipynb").write_text("{ not json", encoding="utf-8")
    subs = find_submissions(tmp_path / "in")
    assert similarity_step(subs, SPEC, tmp_path / "out") == {"href": "similarity.html", "pairs": 0, "flagged": 0}
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert similarity_step(subs, SPEC, blocked) is None
    assert "similarity step failed" in caplog.text
