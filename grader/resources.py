"""Locations of the data files shipped with the grader (templates, rubrics).

In a wheel they are the packages `grader.templates` and `grader.rubrics`; in a checkout (editable
install) they are the top-level `templates/` and `rubrics/` folders.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(package: str, checkout_name: str) -> Path:
    local = _CHECKOUT / checkout_name
    if local.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return local
    return Path(str(resources.files(package)))


def templates_dir() -> Path:
    return _folder("grader.templates", "templates")


def rubrics_dir() -> Path:
    return _folder("grader.rubrics", "rubrics")


def default_rubric() -> Path:
    return rubrics_dir() / "trabajo2.yaml"
