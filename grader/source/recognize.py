"""Is this hand-in Trabajo 2? Decided from several kinds of evidence, as an instructor would.

A hand-in is recognised by what it contains: the assignment's headings and statement text, the
exercises' experiments visible in the code (activations compared, the three initialisers, several
optimizers, a regularised network), Fashion-MNIST loaded under any variable name, and rows the probe
fingerprinted as Fashion-MNIST. It is "another assignment" only when its content says so (another
"Trabajo N" title, another dataset loaded) and nothing of Trabajo 2 is there; with no evidence either
way it is graded as Trabajo 2 (a hand-in that does nothing simply earns nothing).

The evidence is Spanish text for the report. This module reads the submission, the static facts
(`grader.source.static.analyze`), row counts and the rubric's `recognition` section (the assignment's
number and statement phrases, RecognitionSpec): it knows nothing of rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from grader.load import Submission
from grader.rubric import RecognitionSpec

TRABAJO2, OTHER, UNKNOWN = "trabajo2", "other", "unknown"

_DATASET_TEXT = re.compile(r"fashion[-_ ]?mnist")
# Another dataset by its Keras / TFDS / torchvision name; a variable called `mnist` that holds
# Fashion-MNIST (`mnist = tf.keras.datasets.fashion_mnist`) is not one.
_OTHER_DATASETS = re.compile(r"\b(cifar10|cifar100|imdb|reuters|boston_housing|california_housing)\b"
                             r"|datasets\.mnist\b|import[^\n]*\bmnist\b|load\(\s*['\"]mnist['\"]")
_TITLE = re.compile(r"\b(?:trabajo|practica|lab|assignment)\s*(\d+)\b")


@dataclass
class Recognition:
    """The decision and why: `evidence` for Trabajo 2, `against` for another assignment (Spanish)."""

    decision: str = UNKNOWN  # "trabajo2" | "other" | "unknown"
    evidence: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)
    data_loaded: bool = False  # the code loads Fashion-MNIST (or the probe saw its rows)

    @property
    def is_trabajo2(self) -> bool:
        """Graded as Trabajo 2: recognised, or nothing says it is another assignment."""
        return self.decision != OTHER

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "evidence": list(self.evidence), "against": list(self.against),
                "data_loaded": self.data_loaded}


def fold(text: str) -> str:
    """Lowercase without accents ("Inicialización" -> "inicializacion")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def recognize(sub: Submission, static: dict[str, Any], trained_rows: Iterable[dict[str, int] | None] = (),
              spec: RecognitionSpec = RecognitionSpec()) -> Recognition:
    """Decide whether `sub` is the assignment `spec` describes (Trabajo 2) from its text, code, static
    facts and the rows it trained on."""
    out = Recognition()
    number = spec.number
    prose = fold("\n".join(c.source for c in sub.cells if c.cell_type != "code"))
    code = fold("\n".join(c.source for c in sub.cells if c.cell_type == "code"))
    titles = {int(n) for n in _TITLE.findall(prose)}
    if number in titles:
        out.evidence.append(f"el texto se titula «Trabajo {number}»")
    phrases = [p for p in map(fold, spec.statement) if p in prose]
    if phrases:
        out.evidence.append(f"el texto recoge el enunciado ({len(phrases)} frase(s) del enunciado, p. ej. «{phrases[0]}»)")
    if _DATASET_TEXT.search(code):
        out.data_loaded = True
        out.evidence.append("el código carga Fashion-MNIST")
    elif _DATASET_TEXT.search(prose):
        out.evidence.append("el texto nombra Fashion-MNIST")
    if any(rows and (rows.get("train", 0) or rows.get("test", 0)) for rows in trained_rows):
        out.data_loaded = True
        out.evidence.append("los datos entrenados son filas de Fashion-MNIST")
    experiments = _experiments(static)
    if experiments:
        out.evidence.append("el código hace los experimentos del enunciado: " + ", ".join(experiments))
    other_data = sorted({m.group(0) for m in _OTHER_DATASETS.finditer(code)})
    if other_data:
        out.against.append("el código carga otro conjunto de datos (" + ", ".join(other_data) + ")")
    if titles - {number} and number not in titles:
        out.against.append("el texto se titula " + ", ".join(f"«Trabajo {n}»" for n in sorted(titles - {number})))
    out.decision = _decide(out, len(experiments), bool(phrases), number in titles)
    return out


def _decide(out: Recognition, experiments: int, statement: bool, titled: bool) -> str:
    # Fashion-MNIST loaded or trained on settles it; otherwise the statement's text or two of its
    # experiments do, unless the content names another assignment.
    if out.data_loaded:
        return TRABAJO2
    if out.against:
        strong = statement and experiments >= 2
        return TRABAJO2 if strong else OTHER
    if out.evidence and (statement or experiments >= 2 or titled):
        return TRABAJO2
    return UNKNOWN


def _experiments(static: dict[str, Any]) -> list[str]:
    """The exercises' experiments visible in the code, as Spanish phrases."""
    names = {kind: {f.get("name") for f in static.get(kind, [])} for kind in ("activations", "initializers", "optimizers")}
    for mention in static.get("mentions", []):
        names.setdefault(f"{mention['kind']}s", set()).add(mention.get("name"))
    found = []
    if {"sigmoid", "relu"} <= names["activations"]:
        found.append("sigmoide frente a ReLU")
    normal = {"random_normal", "truncated_normal", "he_normal", "glorot_normal", "lecun_normal"}
    if "zeros" in names["initializers"] and names["initializers"] & normal:
        found.append("inicialización a ceros y normal")
    if "SGD" in names["optimizers"] and len(names["optimizers"] - {None}) >= 2:
        found.append("SGD frente a otros optimizadores")
    if any(f.get("kind") in ("Dropout", "BatchNormalization", "l1", "l2", "l1_l2") for f in static.get("regularization", [])):
        found.append("una red regularizada")
    return found
