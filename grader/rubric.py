"""Load a rubric (rubrics/*.yaml) into frozen dataclasses, validating every key and type.

A bad rubric stops the run at once with a `ConfigError` naming the file and the key path, e.g.
``rubrics/x.yaml:rules.split_20.points: expected a number``. Rule-specific parameters and message keys
are checked against the rule registry (`grader.rules.registry.validate_rubric`).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from grader.errors import ConfigError
from grader.resources import default_rubric, rubrics_dir
from grader.results import EXERCISES, GROUPS, STATUSES

SEVERITIES = ("error", "warning", "info")
DEFAULT_PARTIAL = MappingProxyType({"pass": 1.0, "warn": 0.5, "fail": 0.0, "skip": 0.0})

_TOP_KEYS = {"title", "exercises", "messages", "rules", "similarity", "recognition"}
_RULE_KEYS = {"title", "exercise", "severity", "points", "deduction", "partial", "params", "messages"}


class _SafeDict(dict):
    """format_map mapping that leaves unknown placeholders as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill `{placeholders}` from `values`; unknown ones stay, bad format specs never raise."""
    try:
        return string.Formatter().vformat(template, (), _SafeDict(values))
    except (ValueError, IndexError, KeyError, AttributeError):
        return template


@dataclass(frozen=True)
class ExerciseSpec:
    id: str
    title: str
    points: float
    aliases: tuple[str, ...] = ()  # other titles of the exercise in hand-ins (editions, English)


@dataclass(frozen=True)
class RuleSpec:
    id: str
    exercise: str
    severity: str
    points: float
    deduction: Mapping[str, float]
    partial: Mapping[str, float]
    params: Mapping[str, Any]
    messages: Mapping[str, str]
    title: str = ""  # a short Spanish name for tables (the summary); the id when empty

    def fraction(self, status: str) -> float:
        return self.partial.get(status, DEFAULT_PARTIAL[status])

    def points_for(self, status: str, fraction: float | None = None, deduction: float | None = None) -> float:
        """What a verdict of `status` earns: `points × partial[status] − deduction[status]` (a rule may
        pass its own fraction or deduction)."""
        frac = self.fraction(status) if fraction is None else max(0.0, min(1.0, fraction))
        minus = self.deduction.get(status, 0.0) if deduction is None else deduction
        return round(self.points * frac - minus, 4)

    def message(self, key: str, values: Mapping[str, Any], shared: Mapping[str, str] | None = None) -> str:
        """Spanish text for outcome `key`, falling back to the bare status ("fail_x" -> "fail")."""
        template = self.messages.get(key) or self.messages.get(key.split("_", 1)[0], "")
        merged = dict(shared or {})
        merged.update(values)
        return " ".join(render(template, merged).split())


@dataclass(frozen=True)
class RecognitionSpec:
    """What marks a hand-in as this assignment (grader.source.recognize): the number in its title
    ("Trabajo 2", "Práctica 2") and phrases of the statement and its exercise titles, matched without
    case or accents in the Markdown. Part of the digest: it decides whether exercise rules apply."""

    number: int = 2
    statement: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimilaritySpec:
    """How hand-ins of one batch are compared (grader.review.similarity). Flags only: no grade
    depends on it, so the `similarity` section is left out of the rubric digest."""

    template: Path | None = None  # the course's template (.ipynb/.py), resolved against the rubric's folder
    kgram: int = 25  # tokens per hashed k-gram: shorter shared runs are noise
    window: int = 6  # winnowing window: a shared run of kgram + window - 1 tokens is always found
    common_fraction: float = 0.5  # without a template: code in more than this share of hand-ins is the template's
    common_min_handins: int = 6  # ... only in batches at least this large
    min_shared: int = 5  # fewer shared fingerprints than this is no match at all
    report_from: float = 0.15  # pairs scoring below this are left out of similarity.html/json
    flag_score: float = 0.5  # flag: this share of the smaller hand-in's fingerprints is in the other
    flag_region_tokens: int = 150  # flag: one matching region at least this long (an exercise copied)
    flag_output_lines: int = 4  # flag: this many identical lines of saved output numbers (the same run)


_SIMILARITY_NUMBERS = {"common_fraction": (0.0, 1.0), "report_from": (0.0, 1.0), "flag_score": (0.0, 1.0)}
_SIMILARITY_COUNTS = {"kgram": 3, "window": 1, "common_min_handins": 2, "min_shared": 1,
                      "flag_region_tokens": 1, "flag_output_lines": 1}


@dataclass(frozen=True)
class Rubric:
    title: str
    exercises: tuple[ExerciseSpec, ...]
    rules: Mapping[str, RuleSpec]
    messages: Mapping[str, str]
    path: str
    digest: str
    similarity: SimilaritySpec = SimilaritySpec()
    recognition: RecognitionSpec = RecognitionSpec()

    def exercise(self, exercise_id: str) -> ExerciseSpec:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        raise KeyError(exercise_id)

    @property
    def aliases(self) -> dict[str, list[str]]:
        """Extra title aliases per exercise, for attribution (grader.rules.attribution)."""
        return {ex.id: list(ex.aliases) for ex in self.exercises if ex.aliases}

    @property
    def max_score(self) -> float:
        return sum(ex.points for ex in self.exercises)


def rubric_digest(rubric: Rubric) -> str:
    """sha256 of the rubric's canonical content (stable across YAML formatting)."""
    return rubric.digest


def read_rubric(path: str | Path | None = None) -> Rubric:
    """Read a rubric file and check its format; defaults to the shipped trabajo2.yaml. The rules'
    own checks (every rule present, its params and messages) are grader.rules.load_rubric's."""
    path = Path(path) if path is not None else default_rubric()
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read rubric ({exc.strerror})", file=name) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=name) from exc
    return parse_rubric(data, name, base_dir=path.parent)


def parse_rubric(data: Any, name: str, base_dir: Path | None = None) -> Rubric:
    """Build a Rubric from already-parsed YAML data; `name` is used in error messages, `base_dir`
    resolves the relative paths it names (the similarity template)."""
    v = _Validator(name)
    top = v.mapping(data, "")
    v.known_keys(top, _TOP_KEYS, "")
    title = v.string(v.require(top, "title", ""), "title")
    exercises = _parse_exercises(v, v.require(top, "exercises", ""))
    shared = {k: v.string(t, f"messages.{k}") for k, t in v.mapping(top.get("messages", {}), "messages").items()}
    rules_raw = v.mapping(v.require(top, "rules", ""), "rules")
    rules = {rid: _parse_rule(v, rid, raw) for rid, raw in rules_raw.items()}
    for ex in exercises:
        if ex.id == "general":
            continue
        total = sum(r.points for r in rules.values() if r.exercise == ex.id)
        if abs(total - ex.points) > 1e-9:
            raise ConfigError(
                f"rule points of {ex.id} add up to {total:g}, expected {ex.points:g}", file=name, key=f"exercises.{ex.id}.points"
            )
    similarity = _parse_similarity(v, top.get("similarity", {}), base_dir)
    recognition = _parse_recognition(v, top.get("recognition", {}))
    graded = {k: x for k, x in top.items() if k != "similarity"}
    canonical = json.dumps(graded, sort_keys=True, ensure_ascii=False, default=str)
    return Rubric(
        title=title,
        exercises=tuple(exercises),
        rules=MappingProxyType(rules),
        messages=MappingProxyType(shared),
        path=name,
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        similarity=similarity,
        recognition=recognition,
    )


def _parse_recognition(v: _Validator, raw: Any) -> RecognitionSpec:
    body = v.mapping(raw, "recognition")
    v.known_keys(body, {"number", "statement"}, "recognition")
    number = v.number(body.get("number", RecognitionSpec.number), "recognition.number", minimum=1)
    if number != int(number):
        raise v.fail("recognition.number", f"expected a whole number, got {number:g}")
    phrases = body.get("statement", [])
    if not isinstance(phrases, list):
        raise v.fail("recognition.statement", f"expected a list of strings, got {_kind(phrases)}")
    statement = tuple(v.string(p, f"recognition.statement[{i}]") for i, p in enumerate(phrases))
    return RecognitionSpec(number=int(number), statement=statement)


def _parse_similarity(v: _Validator, raw: Any, base_dir: Path | None) -> SimilaritySpec:
    body = v.mapping(raw, "similarity")
    v.known_keys(body, {"template", *_SIMILARITY_NUMBERS, *_SIMILARITY_COUNTS}, "similarity")
    values: dict[str, Any] = {}
    for name, (low, high) in _SIMILARITY_NUMBERS.items():
        if name in body:
            values[name] = v.number(body[name], f"similarity.{name}", minimum=low, maximum=high)
    for name, low in _SIMILARITY_COUNTS.items():
        if name in body:
            number = v.number(body[name], f"similarity.{name}", minimum=low)
            if number != int(number):
                raise v.fail(f"similarity.{name}", f"expected a whole number, got {number:g}")
            values[name] = int(number)
    if body.get("template") is not None:
        named = Path(v.string(body["template"], "similarity.template"))
        # Relative to the rubric's folder; then to the shipped rubrics/, so that a copy of the
        # shipped rubric edited elsewhere (--rubric FILE) still finds the shipped template.
        candidates = [named] if named.is_absolute() else [(base_dir or Path.cwd()) / named, rubrics_dir() / named]
        template = next((c for c in candidates if c.is_file()), None)
        if template is None:
            raise v.fail("similarity.template", f"no such file: {candidates[0]}")
        values["template"] = template
    return SimilaritySpec(**values)


def _parse_exercises(v: _Validator, raw: Any) -> list[ExerciseSpec]:
    exercises = v.mapping(raw, "exercises")
    missing = [e for e in EXERCISES if e not in exercises]
    if missing:
        raise ConfigError(f"missing exercise(s) {', '.join(missing)}", file=v.name, key="exercises")
    out = []
    for ex_id, body in exercises.items():
        key = f"exercises.{ex_id}"
        if ex_id not in GROUPS:
            raise ConfigError(f"unknown exercise id (expected one of {', '.join(GROUPS)})", file=v.name, key=key)
        body = v.mapping(body, key)
        v.known_keys(body, {"title", "points", "aliases"}, key)
        raw_aliases = body.get("aliases", [])
        if not isinstance(raw_aliases, list):
            raise v.fail(f"{key}.aliases", f"expected a list of strings, got {_kind(raw_aliases)}")
        aliases = tuple(v.string(a, f"{key}.aliases[{i}]") for i, a in enumerate(raw_aliases))
        out.append(
            ExerciseSpec(
                id=ex_id,
                title=v.string(v.require(body, "title", key), f"{key}.title"),
                points=v.number(v.require(body, "points", key), f"{key}.points", minimum=0),
                aliases=aliases,
            )
        )
    return out


def _parse_rule(v: _Validator, rule_id: str, raw: Any) -> RuleSpec:
    key = f"rules.{rule_id}"
    body = v.mapping(raw, key)
    v.known_keys(body, _RULE_KEYS, key)
    exercise = v.string(v.require(body, "exercise", key), f"{key}.exercise")
    if exercise not in GROUPS:
        raise ConfigError(f"expected one of {', '.join(GROUPS)}, got {exercise!r}", file=v.name, key=f"{key}.exercise")
    severity = v.string(body.get("severity", "error"), f"{key}.severity")
    if severity not in SEVERITIES:
        raise ConfigError(f"expected one of {', '.join(SEVERITIES)}, got {severity!r}", file=v.name, key=f"{key}.severity")
    points = v.number(v.require(body, "points", key), f"{key}.points", minimum=0)
    if exercise == "general" and points:
        raise ConfigError("general rules only deduct; points must be 0", file=v.name, key=f"{key}.points")
    deduction = _status_numbers(v, body.get("deduction", {}), f"{key}.deduction", upper=None)
    partial = _status_numbers(v, body.get("partial", {}), f"{key}.partial", upper=1.0)
    params = v.mapping(body.get("params", {}), f"{key}.params")
    messages = v.mapping(v.require(body, "messages", key), f"{key}.messages")
    for mkey, text in messages.items():
        v.string(text, f"{key}.messages.{mkey}")
        if mkey.split("_", 1)[0] not in STATUSES:
            raise ConfigError("message keys must start with pass, fail, warn or skip", file=v.name, key=f"{key}.messages.{mkey}")
    if "pass" not in messages:
        raise ConfigError("missing key 'pass'", file=v.name, key=f"{key}.messages")
    return RuleSpec(
        id=rule_id,
        exercise=exercise,
        severity=severity,
        points=points,
        deduction=MappingProxyType(deduction),
        partial=MappingProxyType(partial),
        params=_freeze(params),
        messages=MappingProxyType(dict(messages)),
        title=v.string(body["title"], f"{key}.title") if "title" in body else "",
    )


def _status_numbers(v: _Validator, raw: Any, key: str, upper: float | None) -> dict[str, float]:
    table = v.mapping(raw, key)
    out = {}
    for status, value in table.items():
        if status not in STATUSES:
            raise ConfigError(f"expected a status ({', '.join(STATUSES)})", file=v.name, key=f"{key}.{status}")
        out[status] = v.number(value, f"{key}.{status}", minimum=0, maximum=upper)
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(x) for k, x in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(x) for x in value)
    return value


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Validator:
    """Type checks that raise ConfigError with the file name and the key path."""

    def __init__(self, name: str):
        self.name = name

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.name, key=key or None)

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.fail(key, f"keys must be strings, got {k!r}")
        return value

    def require(self, table: dict, name: str, key: str) -> Any:
        if name not in table:
            raise self.fail(key, f"missing key {name!r}")
        return table[name]

    def known_keys(self, table: dict, allowed: set[str], key: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            where = f"{key}.{unknown[0]}" if key else unknown[0]
            raise self.fail(where, f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def number(self, value: Any, key: str, minimum: float | None = None, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"expected a number >= {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"expected a number <= {maximum:g}, got {value:g}")
        return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the string {value!r}"[:60]
    return type(value).__name__
