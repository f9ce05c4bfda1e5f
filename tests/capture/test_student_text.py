"""What a student reads of a kernel error never names the kernel's internal files."""

from __future__ import annotations

import pytest

from grader.capture.runner import _cell_error
from grader.capture.trace import student_text
from grader.options import Limits


@pytest.mark.parametrize(("raw", "shown"), [
    ("invalid syntax (2550002217.py, line 1)", "invalid syntax"),
    ("unexpected indent (/tmp/ipykernel_12/3107983410.py, line 3)", "unexpected indent"),
    ("\x1b[0;31mname 'x' is not defined\x1b[0m", "name 'x' is not defined"),
    ("cannot reshape array of size 784 into shape (28,28,3)", "cannot reshape array of size 784 into shape (28,28,3)"),
])
def test_internal_file_names_and_colours_are_removed(raw: str, shown: str) -> None:
    assert student_text(raw) == shown


def test_a_syntax_error_reply_keeps_its_line_but_not_the_file_name() -> None:
    reply = {"ename": "SyntaxError", "evalue": "invalid syntax (2550002217.py, line 4)",
             "traceback": ["  Cell In[3], line 4", "    esto es prosa", "SyntaxError: invalid syntax"]}
    error = _cell_error(2, reply, Limits())
    assert (error.cell, error.line, error.evalue) == (2, 4, "invalid syntax")
    assert ".py" not in error.evalue
