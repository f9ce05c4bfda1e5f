"""The assertions of isolation_attacks.py's hand-ins, on the batch of tests/test_adversarial.py (which
imports them, so that they share its one module-scoped batch)."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from typing import TYPE_CHECKING

import pytest

from tests.adversarial.attacks import VICTIM_MARKER
from tests.adversarial.harness import ROOT
from tests.adversarial.isolation_attacks import SEEN

if TYPE_CHECKING:
    from tests.test_adversarial import Batch

ATTACK_CELL = 4
# The kernel's own streams and zmq sockets, and files of its own capture folder.
OWN_FD = re.compile(r"^(pipe:|socket:|anon_inode:|/dev/null$|/dev/urandom$|/(.*/)?grader-capture-[^/]+/)")


def _seen(batch: Batch, student: str) -> dict:
    nb = json.loads((batch.out / "work" / student / "executed.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert SEEN in text, text[-2000:]
    return json.loads(text.split(SEEN)[1])


def _page(batch: Batch, student: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", batch.texts[f"{student}.html"])).split())


def _attack_stopped(batch: Batch, student: str, code: str) -> dict:
    from tests.test_adversarial import errors, prefix_run_ok

    result = batch.results[student]
    assert batch.status[student] == "graded", result.errors
    found = [e for e in errors(result, "cell") if e.get("cell") == ATTACK_CELL]
    assert [e["code"] for e in found] == [code], result.errors
    prefix_run_ok(result, batch)
    return found[0]


def test_fd_snooping_finds_no_other_students_content(batch: Batch) -> None:
    _attack_stopped(batch, "iso_fd_snoop", "RuntimeError")
    seen = _seen(batch, "iso_fd_snoop")
    assert any(target.startswith("socket:") for target, _ in seen.values()), seen  # it did list them
    foreign = {fd: target for fd, (target, _) in seen.items() if not OWN_FD.match(target)}
    assert not foreign, foreign
    leaked = [fd for fd, (_, text) in seen.items() if batch.marker in text or VICTIM_MARKER in text]
    assert not leaked, leaked


def test_sandbox_command_line_environment_and_mounts_name_no_hidden_folder(batch: Batch) -> None:
    _attack_stopped(batch, "iso_proc_cmdline", "RuntimeError")
    seen = _seen(batch, "iso_proc_cmdline")
    assert "grader-capture-" in seen["/proc/1/cmdline"], seen["/proc/1/cmdline"]  # read, and it is the copy
    tmp = batch.out.parent
    hidden = [batch.out, tmp / "handins", tmp / "cache", tmp / "rubric.yaml", ROOT]
    # The Python installation is bound into the kernel's root on purpose: its path may lie inside
    # the checkout (`make setup` puts .venv there); it is the one name of it the kernel may see.
    python = sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}, key=len, reverse=True)
    for name, text in seen.items():
        text = text if isinstance(text, str) else json.dumps(text)
        for path in python:
            text = text.replace(path, "<python>")
        named = [str(h) for h in hidden if str(h) in text]
        assert not named, (name, named, text[:3000])
    assert not {"home", "srv", "opt", "mnt"} & set(seen["raiz"]), seen["raiz"]  # a root of its own


@pytest.mark.parametrize("student", ["iso_disk_flood", "iso_inode_flood"])
def test_disk_and_inode_floods_stop_at_the_quota_with_a_spanish_message(batch: Batch, student: str) -> None:
    error = _attack_stopped(batch, student, "OSError")
    assert "espacio de disco" in error["message"] and "No space left" in error["detail"], error
    assert "espacio de disco" in _page(batch, student)
    limited = [e for e in batch.trace(student).errors if e.cell == ATTACK_CELL]
    assert limited and limited[0].limit == "disk", limited


def _wide_run(batch: Batch, student: str):
    from tests.test_adversarial import prefix_run_ok, run

    result = batch.results[student]
    assert batch.status[student] == "graded", result.errors
    prefix_run_ok(result, batch)  # the honest run before it was retrained and kept
    wide = [r for r in result.runs if r.run_id != "m1"]
    assert len(wide) == 1 and not run(result, "m1").is_final, [(r.run_id, r.status, r.reason) for r in result.runs]
    return wide[0]


def test_full_batch_fit_stays_within_the_retrain_childs_memory_limit(batch: Batch) -> None:
    wide = _wide_run(batch, "iso_full_batch_fit")
    assert wide.status == "error" and wide.epochs_run == 0, (wide.status, wide.reason)
    assert any(w in wide.reason for w in ("memory limit", "ResourceExhausted", "MemoryError")), wide.reason
    assert "memory limit" in _page(batch, "iso_full_batch_fit") or "ResourceExhausted" in _page(batch, "iso_full_batch_fit")


def test_very_long_epoch_is_stopped_at_the_retrain_budget(batch: Batch) -> None:
    wide = _wide_run(batch, "iso_long_epoch")
    assert wide.status == "budget" and wide.epochs_run == 0, (wide.status, wide.reason)
    # Either the child's own deadline stops the epoch between chunks of steps, or the parent kills the child.
    stopped_by_child = "used up during fit 1 (after 0 of 1 epochs)" in wide.reason
    assert stopped_by_child or "stopped after" in wide.reason, wide.reason
    assert "fuera de presupuesto" in _page(batch, "iso_long_epoch")


def test_huge_code_cell_is_reported_not_parsed(batch: Batch) -> None:
    from grader.source.parsed import MAX_CELL_CHARS
    from tests.test_adversarial import verdict

    result = batch.results["iso_huge_code_cell"]
    assert batch.status["iso_huge_code_cell"] == "graded", result.errors
    static = batch.trace("iso_huge_code_cell").static
    assert [u["reason"] for u in static["unanalyzed"]] == ["too_large"], static["unanalyzed"]
    parses = verdict(result, "code_parses")
    assert parses.status == "warn" and f"celda {ATTACK_CELL + 1}" in parses.message, parses.message
    assert str(MAX_CELL_CHARS) in parses.message
    print(f"8 MB code cell graded in {result.meta['timings']}")
