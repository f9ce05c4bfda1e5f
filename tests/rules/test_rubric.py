"""Rubric loading: the shipped rubric is valid; every broken variant names its file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader.errors import ConfigError
from grader.resources import default_rubric
from grader.rubric import render
from grader.rules import RULES, load_rubric


def test_shipped_rubric_loads_and_covers_every_rule():
    rubric = load_rubric()
    assert rubric.title.startswith("Trabajo 2")
    assert [e.id for e in rubric.exercises][:4] == ["ex1", "ex2", "ex3", "ex4"]
    assert all(e.points == 2.5 for e in rubric.exercises if e.id != "general")
    assert rubric.max_score == 10.0
    assert set(rubric.rules) == set(RULES)
    assert len(rubric.digest) == 64 and rubric.digest == load_rubric(default_rubric()).digest
    spec = rubric.rules["final_val_accuracy"]
    assert (spec.params["full_at"], spec.params["partial_from"]) == (0.885, 0.86)
    assert rubric.rules["reported_vs_reproduced"].params["tolerance"] == 0.03
    with pytest.raises(TypeError):
        spec.params["full_at"] = 0.5  # frozen


def write_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(default_rubric().read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _set(path: list[str], value):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _delete(path: list[str]):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


@pytest.mark.parametrize("change,key,words", [
    (_set(["rules", "split_20", "points"], "abc"), "rules.split_20.points", "expected a number"),
    (_set(["rules", "split_20", "severity"], "fatal"), "rules.split_20.severity", "expected one of"),
    (_set(["rules", "split_20", "exercise"], "ex9"), "rules.split_20.exercise", "expected one of"),
    (_set(["rules", "split_20", "colour"], "red"), "rules.split_20.colour", "unknown key"),
    (_set(["rules", "split_20", "deduction"], {"oops": 1}), "rules.split_20.deduction.oops", "expected a status"),
    (_set(["rules", "ex1_activations", "partial"], {"warn": 2}), "rules.ex1_activations.partial.warn", "<= 1"),
    (_delete(["rules", "split_20", "messages", "pass"]), "rules.split_20.messages", "missing key 'pass'"),
    (_delete(["rules", "split_20", "messages", "fail_no_validation"]), "rules.split_20.messages",
     "missing message 'fail_no_validation'"),
    (_set(["rules", "final_val_accuracy", "params", "full_at"], "high"), "rules.final_val_accuracy.params.full_at",
     "expected a number"),
    (_set(["rules", "analysis_written", "params", "keywords"], {"ex1": "gradiente"}),
     "rules.analysis_written.params.keywords", "mapping of string lists"),
    (_set(["rules", "split_20", "params", "fudge"], 1), "rules.split_20.params.fudge", "unknown parameter"),
    (_delete(["rules", "code_parses"]), "rules.code_parses", "missing rule"),
    (_set(["rules", "no_such_rule"], {"exercise": "ex1", "points": 0, "messages": {"pass": "x"}}),
     "rules.no_such_rule", "unknown rule"),
    (_set(["rules", "ex1_activations", "points"], 2.0), "exercises.ex1.points", "add up to 2"),
    (_delete(["exercises", "ex3"]), "exercises", "missing exercise(s) ex3"),
    (_set(["exercises", "ex2", "title"], 7), "exercises.ex2.title", "expected a non-empty string"),
    (_set(["exercises", "ex1", "aliases"], "activation"), "exercises.ex1.aliases", "expected a list of strings"),
    (_set(["exercises", "ex1", "aliases"], ["ok", ""]), "exercises.ex1.aliases[1]", "expected a non-empty string"),
    (_set(["recognition", "statement"], "unidades"), "recognition.statement", "expected a list of strings"),
    (_set(["recognition", "number"], 2.5), "recognition.number", "expected a whole number"),
    (_set(["recognition", "phrases"], []), "recognition.phrases", "unknown key"),
    (_set(["rules", "split_20", "messages", "pass"], ["a"]), "rules.split_20.messages.pass", "non-empty string"),
    (_set(["rules", "split_20", "messages", "oops"], "x"), "rules.split_20.messages.oops", "must start with"),
    (_set(["title"], None), "title", "expected a non-empty string"),
    (_set(["rules", "split_20", "points"], 1), "rules.split_20.points", "general rules only deduct"),
])
def test_broken_rubric_names_file_and_key(tmp_path, change, key, words):
    path = write_variant(tmp_path, change)
    with pytest.raises(ConfigError) as info:
        load_rubric(path)
    text = str(info.value)
    assert "broken.yaml" in text and f":{key}:" in text and words in text, text
    assert info.value.key == key


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*invalid YAML"):
        load_rubric(bad)
    with pytest.raises(ConfigError, match=r"nope\.yaml.*cannot read"):
        load_rubric(tmp_path / "nope.yaml")
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_rubric(top)


def test_digest_changes_with_content_only(tmp_path):
    same = write_variant(tmp_path, lambda d: None)
    assert load_rubric(same).digest == load_rubric().digest
    changed = write_variant(tmp_path, _set(["rules", "final_val_accuracy", "params", "full_at"], 0.9))
    assert load_rubric(changed).digest != load_rubric().digest


def test_render_is_safe():
    assert render("celda {cell}, línea {line}", {"cell": 7}) == "celda 7, línea {line}"
    assert render("{x:>}{", {"x": 1}) == "{x:>}{"  # broken format: the template as written
    assert render("{a.b}", {"a": 1}) == "{a.b}"
    message = load_rubric().rules["split_20"].message("fail_wrong_fraction", {"where": "celda 3", "value": "10%"})
    assert message.startswith("El entrenamiento de la celda 3 valida con un 10% de x_train")
    assert "\n" not in message


def test_every_rule_of_the_shipped_rubric_has_a_title() -> None:
    rubric = load_rubric()
    untitled = [rid for rid, spec in rubric.rules.items() if not spec.title]
    assert not untitled, untitled
