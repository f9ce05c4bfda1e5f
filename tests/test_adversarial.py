"""Hostile hand-ins graded in one batch: the grader survives, says what happened, leaks nothing.

One module-scoped fixture grades tests/adversarial/ (see make_hostile.py: every attack next to an
honest notebook) with `grader grade --jobs 2` in a subprocess, after grading the honest notebook
alone for reference, and records what the attacks could have changed outside the grader: files
named PWNED*, a canary file readable only by root, a loopback listener, leftover processes,
the rubric and the retrain cache. The tests below only read that record.

Runs only as root: without root the sandbox cannot drop the uid or isolate the kernel (the grader
says so in every trace), and a fork bomb or a write to the checkout would then really happen.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader.capture.trace import Trace
from grader.load import file_stem, printable
from grader.options import Budget
from grader.report import report_filename
from grader.resources import default_rubric
from grader.results import GradeResult
from tests.adversarial import hostile_names
from tests.adversarial import make_hostile as hostile
from tests.adversarial.harness import (
    HONEST,
    IS_ROOT,
    ROOT,
    Listener,
    SafetyNet,
    digest,
    grade,
    grader_files,
    lay_out,
    plant_canary,
    reap_leftovers,
    remove_pwned,
    results_of,
    texts,
    tree_digest,
)
from tests.adversarial.isolation_checks import (  # noqa: F401  (collected here: they share the batch)
    test_disk_and_inode_floods_stop_at_the_quota_with_a_spanish_message,
    test_fd_snooping_finds_no_other_students_content,
    test_full_batch_fit_stays_within_the_retrain_childs_memory_limit,
    test_huge_code_cell_is_reported_not_parsed,
    test_sandbox_command_line_environment_and_mounts_name_no_hidden_folder,
    test_very_long_epoch_is_stopped_at_the_retrain_budget,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.skipif(
    not IS_ROOT, reason="hostile code is only safe to run under the root-only sandbox (uid drop, namespaces)")]

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
# Small limits so that the loop and the memory bomb cost seconds, not the production minutes.
LIMITS = ["--cell-timeout", "30", "--total-timeout", "150", "--memory-mb", "3072", "--disk-mb", "128",
          "--inodes", "4000", "--retrain-budget", "30", "--retrain-memory-mb", "4096"]
CROSS = "01_cross_neighbours"  # attacks the victim; what it reads is checked with the victim
ATTACK_CELL = 4  # PREFIX is cells 0-3: the first attack cell


@dataclass
class Batch:
    out: Path
    seconds: float
    returncode: int
    stdout: str
    results: dict[str, GradeResult]
    status: dict[str, str]  # gradebook status: graded | error
    alone: GradeResult
    canary: str | None
    marker: str
    connections: list[str]
    pwned: list[str]  # PWNED* files found outside the hand-ins' sandboxes
    stamped: list[str]  # grader files carrying write_outside's signature mtime
    lingering: list[str]  # processes left behind by the hand-ins
    safety: list[str]  # what the test's own guard had to do
    rubric_before: str
    rubric_secret: str
    rubric_after: str
    cache_before: dict[str, str]
    cache_after: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)  # every output file under out, decoded

    def trace(self, student: str) -> Trace:
        return Trace.load(self.out / "work" / student / "trace.json")


# ------------------------------------------------------------------------------------------ fixture


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    tmp = tmp_path_factory.mktemp("adversarial")
    marker = f"HONEST-{secrets.token_hex(8)}"
    handins, alone_dir = tmp / "handins", tmp / "alone"
    lay_out(handins, alone_dir, marker)
    rubric = tmp / "rubric.yaml"
    shutil.copyfile(default_rubric(), rubric)
    rubric_secret = f"RUBRIC-{secrets.token_hex(8)}"  # a comment only the rubric in use contains
    with rubric.open("a", encoding="utf-8") as fh:
        fh.write(f"\n# {rubric_secret}\n")
    cache = tmp / "cache"
    canary, canary_path = plant_canary()
    remove_pwned()
    # Workspaces of this batch go to a private TMPDIR (0711 so that kernel uids can pass through):
    # the attacks that aim at sibling workspaces then only ever reach this batch's.
    private_tmp = Path(tempfile.mkdtemp(prefix="grader-adversarial-", dir="/tmp"))
    os.chmod(private_tmp, 0o711)
    listener = Listener()
    guard = SafetyNet()
    try:
        common = ["--no-pdf", "--quiet", "--rubric", str(rubric), "--cache-dir", str(cache),
                  "--data-dir", str(DATA_DIR), *LIMITS]
        env = dict(os.environ, TMPDIR=str(private_tmp), PYTHONPATH=str(ROOT))
        rc, out_alone, _ = grade(alone_dir, tmp / "out-alone", common, env, guard)
        assert rc == 0, out_alone
        alone = results_of(tmp / "out-alone")[0]["zz_honest"]
        cache_before = tree_digest(cache)
        rubric_before = digest(rubric)
        rc, stdout, seconds = grade(handins, tmp / "out", common, env, guard)
        results, status = results_of(tmp / "out")
        pwned = remove_pwned(extra_roots=[private_tmp, tmp])
        stamped = [str(p) for p in grader_files() if int(p.stat().st_mtime) == hostile.SIGNATURE_MTIME]
        lingering = reap_leftovers(private_tmp)
        return Batch(
            out=tmp / "out", seconds=seconds, returncode=rc, stdout=stdout, results=results, status=status,
            alone=alone, canary=canary, marker=marker, connections=listener.stop(), pwned=pwned,
            rubric_secret=rubric_secret,
            stamped=stamped, lingering=lingering, safety=guard.stop(), rubric_before=rubric_before,
            rubric_after=digest(rubric), cache_before=cache_before, cache_after=tree_digest(cache),
            texts=texts(tmp / "out"))
    finally:
        listener.stop()
        guard.stop()
        reap_leftovers(private_tmp)
        shutil.rmtree(private_tmp, ignore_errors=True)
        if canary_path is not None:
            canary_path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------- helpers


def errors(result: GradeResult, stage: str | None = None) -> list[dict]:
    return [e for e in result.errors if stage is None or e.get("stage") == stage]


def cell_errors(result: GradeResult, cell: int) -> list[str]:
    return [e["code"] for e in errors(result, "cell") if e.get("cell") == cell]


def verdict(result: GradeResult, rule: str):
    return next((v for v in result.rules if v.id == rule), None)


def histories(result: GradeResult) -> list[tuple]:
    return [(r.run_id, r.status, r.epochs_run, r.history, r.test_accuracy) for r in result.runs]


def run(result: GradeResult, run_id: str):
    return next((r for r in result.runs if r.run_id == run_id), None)




def prefix_run_ok(result: GradeResult, batch: Batch) -> None:
    """The honest fit before the attack (model m1) was captured and retrained like the reference."""
    m1 = run(result, "m1")
    assert m1 is not None and m1.status == "ok", [(r.run_id, r.status, r.reason) for r in result.runs]
    assert m1.history == run(batch.alone, "m1").history


def student_files(batch: Batch, student: str) -> dict[str, str]:
    return {k: v for k, v in batch.texts.items() if student in k}


# -------------------------------------------------------------------------------- the batch itself


def test_batch_finished_with_a_result_for_every_handin(batch: Batch) -> None:
    assert batch.returncode == 0, batch.stdout[-3000:]
    expected = set(hostile.CASES)
    assert expected <= set(batch.results), f"missing: {sorted(expected - set(batch.results))}"
    print(f"batch of {len(batch.results)} hand-ins graded in {batch.seconds:.0f} s")


def test_the_grader_never_failed_on_a_hostile_handin(batch: Batch) -> None:
    """Every attack ends as data in a graded result, not as a crashed worker ('error' status)."""
    crashed = {s: errors(r, "grader") for s, r in batch.results.items() if batch.status[s] != "graded"}
    assert not crashed, crashed


def test_honest_handin_is_intact(batch: Batch) -> None:
    honest = batch.results["zz_honest"]
    assert honest.meta.get("trace_status") == "ok", honest.errors
    assert not errors(honest, "cell") and not errors(honest, "capture")
    assert histories(honest) == histories(batch.alone)
    assert honest.score == batch.alone.score


def test_victim_running_beside_an_attacker_is_intact(batch: Batch) -> None:
    victim = batch.results["00_victim_honest"]
    assert victim.meta.get("trace_status") == "ok", victim.errors
    assert histories(victim) == histories(batch.alone)
    read = [k for k, text in student_files(batch, CROSS).items() if batch.marker in text]
    assert not read, f"the attacker printed the victim's notebook into {read}"


def test_safety_net_stayed_idle(batch: Batch) -> None:
    assert not batch.safety, batch.safety


def test_no_process_left_behind(batch: Batch) -> None:
    left = [p for p in batch.lingering if hostile.CHDIR_DAEMON not in p]
    assert not left, left


def test_daemon_that_leaves_the_workspace_is_killed(batch: Batch) -> None:
    left = [p for p in batch.lingering if hostile.CHDIR_DAEMON in p]
    assert not left, left


def test_no_file_created_outside_the_sandbox(batch: Batch) -> None:
    assert not batch.pwned, batch.pwned


def test_grader_files_rubric_and_cache_unchanged(batch: Batch) -> None:
    assert not batch.stamped, batch.stamped
    assert batch.rubric_after == batch.rubric_before
    assert batch.cache_before, "the reference run left nothing in the retrain cache"
    changed = {k for k, v in batch.cache_before.items() if batch.cache_after.get(k) != v}
    assert not changed, changed


def test_no_network_connection_reached_the_listener(batch: Batch) -> None:
    assert not batch.connections, batch.connections
    assert cell_errors(batch.results["network_loopback"], ATTACK_CELL) == ["ConnectionError"]


def test_canary_readable_only_by_root_never_leaks(batch: Batch) -> None:
    leaks = [name for name, text in batch.texts.items() if batch.canary in text]
    leaks += [s for s, r in batch.results.items() if batch.canary in json.dumps(r.to_dict())]
    assert not leaks, leaks


FLAG_RULES = ("suspicious_code", "fits_recorded", "reported_vs_reproduced", "code_parses")
TWINS = ("hidden_open_fit", "forged_twin_honest")  # the references the hidden and forged hand-ins are held to
# Training hidden from the probe's fit wrapper (issue 18): the protocol rules flag it, at its cell.
HIDDEN_VARIANTS = ["hidden_mro_fit", "hidden_train_on_batch", "hidden_gradient_tape"]
# Attacks on the grader's own retrain: the report's runs table says what stopped them (isolation_checks).
RETRAIN_SIDE = ("iso_full_batch_fit", "iso_long_epoch")


@pytest.mark.parametrize("student", [c for c in hostile.CASES if c not in (*HONEST, *TWINS, *RETRAIN_SIDE)
                                     and not c.startswith("loader_")])
def test_every_attack_has_an_entry_in_its_report(batch: Batch, student: str) -> None:
    """The student reads in Spanish what stopped or flagged the attack, next to the cell; the
    instructor gets the rule, the evidence, or the sandbox's own English detail."""
    result = batch.results[student]
    stopped = errors(result, "cell") + errors(result, "capture")
    rules = FLAG_RULES + (("no_test_tuning", "split_20") if student in HIDDEN_VARIANTS else ())
    flagged = [v for v in result.rules if v.id in rules and v.status in ("warn", "fail")]
    assert stopped or flagged, [(v.id, v.status) for v in result.rules]
    page = " ".join(html.unescape(re.sub(r"<[^>]+>", "", batch.texts[f"{student}.html"])).split())
    said = lambda text: " ".join(text.replace("`", "").split())[:60] in page.replace("`", "")  # noqa: E731
    if stopped:
        assert "Problemas al cargar o ejecutar la entrega" in page
        assert any(f"celda {e['cell'] + 1}" in page for e in stopped if e.get("cell") is not None) or \
            any(said(e["message"]) for e in errors(result, "capture"))
    for v in flagged:
        assert said(v.message), (v.id, v.message[:60])
        assert v.evidence and all(ev.cell is not None for ev in v.evidence), v.evidence


def test_rubric_in_use_is_not_readable_from_a_kernel(batch: Batch) -> None:
    """read_secrets looks for rubrics/*.yaml next to the grader's virtualenv and on sys.path, and for
    *.yaml under /tmp (where this batch's rubric is); it prints '== PATH' for every file it read."""
    read = [k for k, text in student_files(batch, "read_secrets").items() if batch.rubric_secret in text]
    assert not read, read
    own = str(ROOT / "rubrics")
    opened = [k for k, text in student_files(batch, "read_secrets").items() if f"== {own}" in text]
    assert not opened, f"read_secrets opened the grader's own rubrics in {opened}"


def test_honest_handins_text_never_reaches_a_hostile_result(batch: Batch) -> None:
    leaks = []
    for student, result in batch.results.items():
        if student in HONEST or student == CROSS:
            continue
        if batch.marker in json.dumps(result.to_dict(), ensure_ascii=False):
            leaks.append(f"{student}: result")
        leaks += [f"{student}: {name}" for name, text in student_files(batch, student).items()
                  if batch.marker in text]
    assert not leaks, leaks


def test_outputs_stay_small_after_the_output_flood(batch: Batch) -> None:
    files = {name: len(text) for name, text in student_files(batch, "output_flood_1gb").items()}
    assert files and max(files.values()) < 5 * 2**20, files
    trace = batch.trace("output_flood_1gb")
    # Either the cap drops the flood, or the kernel's own send buffers grow past the memory limit
    # first (seen with a 3 GB limit): both stop it, neither reaches the grader.
    stopped = trace.status == "memory" or any("output cap" in m for m in trace.messages)
    assert stopped, (trace.status, trace.messages)
    prefix_run_ok(batch.results["output_flood_1gb"], batch)


# ----------------------------------------------------------------------------- one test per attack


def test_infinite_loop_times_out_and_keeps_the_earlier_fit(batch: Batch) -> None:
    result = batch.results["timeout_infinite_loop"]
    assert result.meta["trace_status"] == "timeout"
    assert cell_errors(result, ATTACK_CELL) == ["Timeout"]
    assert verdict(result, "cells_run").status == "fail"
    assert "celda" in verdict(result, "cells_run").message
    prefix_run_ok(result, batch)


@pytest.mark.parametrize("student, cell, codes", [
    ("memory_bytearray_30g", ATTACK_CELL, {"MemoryError"}),  # RLIMIT_DATA
    ("memory_growing_list", ATTACK_CELL, {"MemoryError", "MemoryLimit"}),  # rlimit or watchdog
    ("fork_bomb", ATTACK_CELL + 1, {"BlockingIOError", "Timeout"}),  # RLIMIT_NPROC or cell limit
    ("subprocess_spawn", ATTACK_CELL, {"BlockingIOError", "Timeout"}),
    ("read_secrets", ATTACK_CELL, {"RuntimeError"}),  # its own raise, carrying what it could read
    ("network_loopback", ATTACK_CELL, {"ConnectionError"}),  # its own raise: nothing connected
])
def test_attack_ends_as_a_cell_error_and_keeps_the_earlier_fit(
        batch: Batch, student: str, cell: int, codes: set[str]) -> None:
    result = batch.results[student]
    got = cell_errors(result, cell)
    assert len(got) == 1 and got[0] in codes, result.errors
    assert verdict(result, "cells_run").status == "fail"
    prefix_run_ok(result, batch)


def test_writing_outside_does_not_touch_the_grader(batch: Batch) -> None:
    result = batch.results["write_outside"]
    assert not [p for p in batch.pwned if "site-packages" in p or str(ROOT) in p or "/root" in p]
    prefix_run_ok(result, batch)


def test_restored_fit_still_shows_the_test_set_as_validation(batch: Batch) -> None:
    result = batch.results["probe_restore_fit"]
    split = verdict(result, "split_20")
    assert split is not None and split.status == "fail", split
    assert any(ev.cell == ATTACK_CELL for ev in split.evidence), split.evidence
    tampered = verdict(result, "fits_recorded")  # the replaced keras.Model.fit is reported as such
    assert tampered is not None and tampered.status == "fail", tampered
    assert any(ev.cell == ATTACK_CELL for ev in tampered.evidence), tampered.evidence
    prefix_run_ok(result, batch)


def test_forged_events_are_validated_and_bounded(batch: Batch) -> None:
    """Well-formed forged fits are indistinguishable from real ones (the kernel owns the events
    file), so they are retrained -- but capped; garbage lines and ../ digests are dropped."""
    result = batch.results["probe_fake_events"]
    trace = batch.trace("probe_fake_events")
    assert any("malformed event" in m for m in trace.messages), trace.messages
    assert any("missing or invalid" in m for m in trace.messages), trace.messages
    cap = Budget().max_epochs
    for r in result.runs:
        assert r.epochs_run <= cap * len(r.fit_indices), (r.run_id, r.epochs_run, r.reason)
        assert (r.best_val_accuracy or 0) < 0.95, r


def test_overwritten_arrays_are_rejected(batch: Batch) -> None:
    result = batch.results["probe_overwrite_npy"]
    trace = batch.trace("probe_overwrite_npy")
    assert any("missing or invalid" in m for m in trace.messages), trace.messages
    for r in result.runs:  # never trained on the zeros: refused, or identical to the reference
        assert r.status != "ok" or r.history == run(batch.alone, "m1").history, r


def test_lambda_payload_never_runs_in_the_grader(batch: Batch) -> None:
    assert not [p for p in batch.pwned if p.endswith("-lambda")]
    result = batch.results["probe_lambda_payload"]
    lambda_runs = [r for r in result.runs if r.run_id != "m1"]
    assert lambda_runs and all(r.status != "ok" for r in lambda_runs), histories(result)


def test_forged_history_does_not_raise_the_grade(batch: Batch) -> None:
    result = batch.results["forged_history"]
    assert len(result.runs) == 2 and all((r.best_val_accuracy or 0) < 0.95 for r in result.runs)
    prefix_run_ok(result, batch)
    assert result.final is not None and result.final["val_accuracy"] < 0.95, result.final
    claimed = verdict(result, "reported_vs_reproduced")
    assert claimed is not None and claimed.status in ("fail", "warn"), claimed


def test_deleting_files_only_hurts_the_attacker(batch: Batch) -> None:
    prefix_run_ok(batch.results["delete_files"], batch)


@pytest.mark.parametrize("student", ["kill_parent", "kernel_exit", "kernel_segfault"])
def test_dying_kernel_is_reported_and_keeps_the_earlier_fit(batch: Batch, student: str) -> None:
    result = batch.results[student]
    assert result.meta["trace_status"] == "kernel_died", result.errors
    assert cell_errors(result, ATTACK_CELL) == ["KernelDied"]
    assert verdict(result, "cells_run").status == "fail"
    prefix_run_ok(result, batch)


@pytest.mark.parametrize("student, code", [
    ("loader_malformed_json", "invalid_json"), ("loader_binary", "binary"), ("loader_empty", "empty"),
    ("loader_huge", "too_large"), ("loader_zip_slip", "zip_unsafe_path"), ("loader_zip_bomb", "zip_bomb"),
])
def test_bad_files_get_a_spanish_load_error(batch: Batch, student: str, code: str) -> None:
    load = errors(batch.results[student], "load")
    assert [e["code"] for e in load] == [code], batch.results[student].errors
    assert "«" in load[0]["message"]  # names the file, in the Spanish message style


def test_nbformat_v3_is_converted_and_run(batch: Batch) -> None:
    result = batch.results["loader_nbformat_v3"]
    assert not errors(result, "load")
    assert any("v3" in n for n in result.meta.get("notes", []))
    assert result.meta.get("trace_status") == "ok", result.errors


# ------------------------------------------------------- hidden training and forged claims (issue 18)

def points(result: GradeResult) -> float:
    """The rules' points before the total is clamped at 0 (these small hand-ins score 0 in total)."""
    return round(sum(v.points for v in result.rules), 4)


@pytest.mark.parametrize("student", HIDDEN_VARIANTS)
def test_hidden_training_on_test_never_scores_better_than_the_open_fit(batch: Batch, student: str) -> None:
    hidden, open_fit = batch.results[student], batch.results["hidden_open_fit"]
    assert verdict(open_fit, "no_test_tuning").status == "fail"
    tuning = verdict(hidden, "no_test_tuning")
    assert tuning.status == "fail", tuning.message
    assert any(ev.cell == ATTACK_CELL for ev in tuning.evidence), tuning.evidence
    assert hidden.score <= open_fit.score, (hidden.score, open_fit.score)
    assert points(hidden) <= points(open_fit), [(v.id, v.points) for v in hidden.rules if v.points]
    prefix_run_ok(hidden, batch)


@pytest.mark.parametrize("student, kind", [("hidden_train_on_batch", "train_on_batch"),
                                           ("hidden_gradient_tape", "apply_gradients")])
def test_steps_outside_fit_are_recorded_on_test_rows(batch: Batch, student: str, kind: str) -> None:
    steps = [s for s in batch.trace(student).train_steps if s.kind == kind]
    assert len(steps) == 1 and steps[0].steps == 32, steps  # 32 batches of 64 rows
    # batches kept at steps 1, 2, 4, 8, 16 and 32; the dataset of x_test[:2000] ends on 16 rows,
    # the loop slicing x_test[i:i + 64] up to i = 1984 on 64
    last = 16 if kind == "apply_gradients" else 64
    assert [r.rows["test"] for r in steps[0].x] == [64] * 5 + [last], steps[0].x
    assert any("not replayed by the retrain" in n for n in batch.results[student].meta["capture_notes"])


def test_fit_through_the_trainer_base_is_recorded_like_the_open_one(batch: Batch) -> None:
    hidden, open_trace = batch.trace("hidden_mro_fit"), batch.trace("hidden_open_fit")
    assert [(f.location.cell, f.x.rows) for f in hidden.fits][1:] == [(f.location.cell, f.x.rows)
                                                                      for f in open_trace.fits][1:]
    assert verdict(batch.results["hidden_mro_fit"], "fits_recorded").status == "pass"


def test_forged_claims_and_workspace_files_never_beat_the_honest_twin(batch: Batch) -> None:
    forged, twin = batch.results["forged_workspace"], batch.results["forged_twin_honest"]
    assert forged.score <= twin.score, (forged.score, twin.score)
    assert points(forged) < points(twin), (points(forged), points(twin))  # the flagged claim costs
    assert forged.final == twin.final and forged.final["val_accuracy"] < 0.95, (forged.final, twin.final)
    claimed = verdict(forged, "reported_vs_reproduced")
    assert claimed.status == "warn" and claimed.evidence[0].cell == ATTACK_CELL + 2, claimed
    assert verdict(twin, "reported_vs_reproduced").status == "pass", verdict(twin, "reported_vs_reproduced")
    assert all((r.best_val_accuracy or 0) < 0.95 for r in forged.runs), histories(forged)


# ------------------------------------------------------------- identity and names (hostile_names.py)


def tagged(batch: Batch, tag: str) -> list[str]:
    """The students whose result carries `tag` (each tagged notebook raises it in its code cell)."""
    return [s for s, r in batch.results.items() if any(tag in str(e.get("message")) for e in r.errors)]


def from_source(batch: Batch, name: str) -> str:
    """The one student whose hand-in is the file or folder `name` of the batch."""
    [student] = [s for s, r in batch.results.items() if r.record and r.record.source_name == printable(name)]
    return student


def report_text(batch: Batch, student: str) -> str:
    return batch.texts[report_filename(student)]


def test_every_handin_with_a_hostile_name_has_its_own_row(batch: Batch) -> None:
    handins = list((batch.out.parent / "handins").iterdir())
    assert len(batch.results) == len(handins), sorted(batch.results)
    for tag in hostile_names.TAGGED:
        assert len(tagged(batch, tag)) == 1, (tag, tagged(batch, tag))
    for name in hostile_names.EMPTY:
        assert errors(batch.results[from_source(batch, name)], "load"), name
    for student in batch.results:
        assert batch.status[student] == "graded", student
        assert report_filename(student) in batch.texts, student
        log = batch.out / "logs" / f"{file_stem(student)}.log"
        assert log.is_file() and len(log.name.encode()) < 255, log


@pytest.mark.parametrize("pair", hostile_names.COLLIDING, ids=lambda p: p[0])
def test_colliding_names_keep_their_own_results_and_reports(batch: Batch, pair: tuple[str, str]) -> None:
    """ana/Ana, NFC/NFD José, a ZIP and a file mapping to one id: two rows, two reports, each
    showing its own work, and a note in both saying which id each one got."""
    [one], [other] = (tagged(batch, tag) for tag in pair)
    assert one != other and one.casefold() != other.casefold()
    for student, own, foreign in ((one, pair[0], pair[1]), (other, pair[1], pair[0])):
        page = report_text(batch, student)
        assert own in page and foreign not in page, student
        notes = batch.results[student].meta.get("notes", [])
        assert any("coincide" in n and f"«{one}»" in n and f"«{other}»" in n for n in notes), notes
        assert "coincide" in html.unescape(page)


def test_no_report_overwrites_the_class_summary(batch: Batch) -> None:
    student = from_source(batch, "index.ipynb")
    assert student == "index" and report_filename(student) != "index.html"
    summary = batch.texts["index.html"]
    # The class summary, one row per hand-in (its "Revisar" column may quote index.ipynb's load error).
    assert 'id="students"' in summary and summary.count("<tr data-review=") == len(batch.results)
    assert "«index.ipynb»" in report_text(batch, student)  # its own load error
    outputs = {"grades.csv", "results.json", "junit.xml", "gradebook.sqlite", "logs", "results", "work",
               "gradescope", "extracted"}
    assert not {report_filename(s) for s in batch.results} & outputs


def test_displayed_names_carry_no_bidi_override(batch: Batch) -> None:
    student = from_source(batch, f"{hostile_names.RLO}aicraG anA.ipynb")
    assert hostile_names.RLO not in student and batch.results[student].record.display_name == student
    written = (".html", ".csv", ".json", ".xml", ".log", ".sqlite", ".ipynb")  # not binary arrays
    leaks = [name for name, text in batch.texts.items() if name.endswith(written) and hostile_names.RLO in text]
    assert not leaks, leaks


def test_grades_csv_cells_are_neutralised(batch: Batch) -> None:
    with (batch.out / "grades.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(batch.results)
    students = {row["student"] for row in rows}
    assert {"'" + name for name in hostile_names.FORMULA_NAMES} <= students, students
    for row in rows:
        for column, cell in row.items():
            text_cell = column in ("student", "failed_rules", "feedback")
            assert not cell.startswith(("=", "+", "@", "\t", "\r", *(("-",) if text_cell else ()))), row


def test_long_and_non_utf8_names_are_graded(batch: Batch) -> None:
    for name in (hostile_names.LONG_FILE, hostile_names.LONG_FOLDER):
        student = from_source(batch, name)
        assert len(student.encode("utf-8")) <= 100 and "está vacío" in html.unescape(report_text(batch, student))
    [student] = tagged(batch, "propio-latin1")  # run by a kernel like any other hand-in
    assert "\ufffd" in student and "propio-latin1" in report_text(batch, student)
    assert batch.results[student].meta.get("trace_status") == "ok"


@pytest.mark.parametrize("student, code", list(hostile_names.LOAD_ERRORS.items()))
def test_bad_names_and_archives_get_a_spanish_load_error(batch: Batch, student: str, code: str) -> None:
    load = errors(batch.results[student], "load")
    assert [e["code"] for e in load] == [code], batch.results[student].errors
    assert "«" in load[0]["message"]


def test_nested_zips_share_one_budget_and_nothing_stays_extracted(batch: Batch) -> None:
    [student] = tagged(batch, "propio-zips-anidados")
    notes = batch.results[student].meta.get("notes", [])
    assert any("«datos2.zip»" in n and "en toda la entrega" in n for n in notes), notes
    assert not any("datos1.zip" in n for n in notes), notes
    assert not (batch.out / "extracted").exists()
    assert not list(batch.out.rglob("datos_*")), "extracted members left under OUT"
