"""Course platforms' "download all" names: Moodle and Canvas hand-ins recognised by their names.

Moodle ("Descargar todas las entregas") writes, per participant and submission plugin,
    4.1+ folders:   "{Full Name}_{participantid}_assignsubmission_file/{file}"
    3.x folders:    "{Full Name}_{participantid}_assignsubmission_file_/{file}"
    flat (the "download as folders" option off): "{Full Name}_{participantid}_assignsubmission_file_{file}"
Moodle replaces "_" in the name by a space, so the name never holds "_". Blind marking writes
"Participant_{id}" / "Participante_{id}"; team submissions "{Group}_{groupid}" (4.x) or
"{Group}-{Full Name}_{id}" (3.x). "..._assignsubmission_onlinetext/onlinetext.html" is the online
text plugin: not code. Canvas writes flat files
    "{lastnamefirstname}[_LATE]_{userid}_{attachmentid}_{original name}"
(lower case, no spaces), "{...}_{userid}_text.html" for a text entry and "anon_{id}..." when grading
is anonymous. Several files of one student become one hand-in; `Submission.student` is derived from
the platform id so that two students of the same name never share an id.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.load.names import is_ignored, natural_key, student_id
from grader.load.submission import Submission
from grader.results import StudentRecord

log = logging.getLogger(__name__)

PLATFORM_TITLES = {"moodle": "Moodle", "canvas": "Canvas"}
# Moodle's get_string('participant', 'assign') in the languages this course uses.
_BLIND_NAMES = {"participant", "participante"}
_MOODLE_RE = re.compile(
    r"^(?P<name>[^_]+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z0-9]+)(?P<rest>_.*)?$", re.DOTALL)
# Ids of 3+ digits: a student's own "alumno_1_2_x.ipynb" is not Canvas (real Canvas ids are large).
_CANVAS_FILE_RE = re.compile(r"^(?P<name>[^\W_]+)(?P<late>_LATE)?_(?P<id>\d{3,})_(?P<att>\d{3,})_(?P<orig>.+)$")
_CANVAS_TEXT_RE = re.compile(r"^(?P<name>[^\W_]+)(?P<late>_LATE)?_(?P<id>\d{3,})_(?P<orig>text\.html?)$")
_CANVAS_ANON_RE = re.compile(r"^anon_(?P<id>[A-Za-z0-9]+)(?P<late>_LATE)?_(?P<att>\d{3,})_(?P<orig>.+)$")
_TEXT_PLUGINS = {"onlinetext"}


@dataclass(frozen=True)
class PlatformName:
    """What a platform wrote into one file or folder name."""

    platform: str  # "moodle" | "canvas"
    display_name: str
    platform_id: str | None  # None: Moodle's default team has no group id
    late: bool = False
    text: bool = False  # an online-text entry (HTML), never graded as code
    original: str | None = None  # the student's own file name (flat layouts); None for a folder
    stem: str = ""  # the name part of the hand-in id ("Ana García López", "garcialopezana", "anon")


@dataclass
class PlatformHandin:
    """One participant's entries of a platform download, before loading."""

    record: StudentRecord
    student: str
    entries: list[tuple[Path, PlatformName]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def clean_display_name(text: str) -> str:
    """Drop control, format (bidirectional, zero-width) characters; collapse spaces."""
    kept = "".join(ch for ch in unicodedata.normalize("NFC", text)
                   if unicodedata.category(ch) not in ("Cc", "Cf"))
    return re.sub(r"\s+", " ", kept).strip()


def parse_name(name: str, is_dir: bool) -> PlatformName | None:
    """The platform's reading of a top-level entry name of a "download all" ZIP, or None."""
    if m := _MOODLE_RE.match(name):
        rest = m["rest"]
        if is_dir and rest not in (None, "_"):
            return None
        if not is_dir and (rest is None or len(rest) < 2):
            return None
        display = clean_display_name(m["name"])
        if display.casefold() in _BLIND_NAMES and m["id"]:
            display = f"{display} {m['id']}"
        return PlatformName("moodle", display, m["id"], text=m["plugin"] in _TEXT_PLUGINS,
                            original=None if is_dir else rest[1:], stem=clean_display_name(m["name"]))
    if is_dir:
        return None
    if m := _CANVAS_ANON_RE.match(name):
        return PlatformName("canvas", f"Anónimo {m['id']}", m["id"], late=bool(m["late"]),
                            original=m["orig"], stem="anon")
    for pattern in (_CANVAS_FILE_RE, _CANVAS_TEXT_RE):
        m = pattern.match(name)
        if m and m["name"] == m["name"].lower():
            return PlatformName("canvas", clean_display_name(m["name"]), m["id"], late=bool(m["late"]),
                                text=pattern is _CANVAS_TEXT_RE, original=m["orig"], stem=m["name"])
    return None


def _student_id(parsed: PlatformName) -> str:
    # The name as the platform wrote it, then the platform id that makes it unique. For Moodle this
    # is the id the loader always gave a download's folder ("Ana Pérez_1234"), so gradebooks made
    # before platforms were recognised resume without re-grading.
    return student_id(f"{parsed.stem}_{parsed.platform_id}" if parsed.platform_id else parsed.stem)


def group_entries(entries: list[Path]) -> tuple[list[PlatformHandin], list[Path]]:
    """Split a batch folder's entries into platform hand-ins (grouped per participant) and the rest."""
    groups: dict[tuple, PlatformHandin] = {}
    rest = []
    for entry in entries:
        parsed = parse_name(entry.name, entry.is_dir())
        if parsed is None:
            rest.append(entry)
            continue
        key = (parsed.platform, parsed.platform_id, parsed.display_name.casefold())
        if key not in groups:
            record = StudentRecord(parsed.display_name, parsed.platform, parsed.platform_id,
                                   source_name=entry.name)
            groups[key] = PlatformHandin(record, _student_id(parsed))
        handin = groups[key]
        handin.entries.append((entry, parsed))
        handin.record.late = handin.record.late or parsed.late
    handins = list(groups.values())
    for handin in handins:
        handin.entries.sort(key=lambda e: natural_key(e[0].name))
        handin.record.source_name = ", ".join(e.name for e, _ in handin.entries)
    return handins, rest


def platform_submissions(handins: list[PlatformHandin], rest: list[Submission],
                         load: Callable[..., Submission], workdir: Path | None) -> list[Submission]:
    """Load each platform hand-in (its record and notes set) and note mixed or repeated names.

    `rest` are the batch's other hand-ins (already loaded): they get a note when their name does
    not follow the platform's naming. Nothing is ever merged across participants.
    """
    subs = []
    for handin in handins:
        try:
            path = _handin_path(handin, workdir)
        except OSError as exc:  # a copy failed (disk full, unreadable file): load what is there
            log.warning("%s: could not gather its files (%s)", handin.student, exc)
            handin.notes.append("No se han podido reunir todos los ficheros de esta entrega; se ha cargado "
                                f"«{handin.entries[0][0].name}».")
            path = handin.entries[0][0]
        sub = load(path, handin.student, workdir=workdir)
        sub.record = handin.record
        sub.notes[:0] = handin.notes
        subs.append(sub)
    platforms = sorted({h.record.platform for h in handins})
    titles = " y ".join(PLATFORM_TITLES[p] for p in platforms)
    if len(platforms) > 1:
        for sub in subs:
            sub.notes.append(f"La descarga mezcla nombres de {titles}; cada fichero se ha tratado como "
                             "una entrega según su propio formato.")
    for sub in rest:
        sub.notes.append(f"El nombre «{sub.path.name}» no sigue el formato de descarga de {titles}; "
                         "la entrega se identifica por el nombre del fichero.")
    claims: dict[tuple[str, str], list[Submission]] = {}
    for sub in subs:
        if sub.record is not None and sub.record.platform_id:
            claims.setdefault((sub.record.platform, sub.record.platform_id), []).append(sub)
    for (platform, pid), claimants in claims.items():
        if len(claimants) < 2:
            continue
        names = [s.record.display_name for s in claimants if s.record]
        log.warning("%s id %s appears in %d hand-ins (%s): all kept", PLATFORM_TITLES[platform], pid,
                    len(claimants), ", ".join(names))
        for sub, name in zip(claimants, names):
            others = ", ".join(f"«{o}»" for o in names if o != name) or f"«{name}»"
            sub.notes.append(f"El identificador {pid} de {PLATFORM_TITLES[platform]} aparece también en la "
                             f"entrega de {others}; se conservan todas y el profesor decide a cuál "
                             "corresponde la nota.")
    return subs


def _handin_path(handin: PlatformHandin, workdir: Path | None) -> Path:
    """The folder (or file) to load: a lone Moodle folder as it is, otherwise a folder built of copies.

    Copies, not links: the loader skips symlinks on purpose. The copy carries the student's own
    file names, which the report and the merge order use.
    """
    code = [(p, n) for p, n in handin.entries if not n.text]
    for path, parsed in handin.entries:
        if parsed.text:
            shown = path.name if not path.is_dir() else "/".join(
                [path.name, *(c.name for c in sorted(path.iterdir()) if not is_ignored(c.name))][:2])
            handin.notes.append(f"La entrega incluye texto en línea de {PLATFORM_TITLES[parsed.platform]} "
                                f"(«{shown}»); se ha guardado, pero no se corrige como código.")
    if not code:
        return handin.entries[0][0]
    if len(code) == 1 and code[0][0].is_dir():
        return code[0][0]
    tag = hashlib.sha256("\0".join(str(p) for p, _ in handin.entries).encode()).hexdigest()[:8]
    dest = _base(workdir) / "platforms" / f"{handin.student}-{tag}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path, parsed in code:
        if path.is_dir():
            for child in sorted(path.iterdir(), key=lambda c: natural_key(c.name)):
                if not is_ignored(child.name) and not child.is_symlink():
                    _copy(child, _free_name(dest, child.name))
        elif not path.is_symlink():
            _copy(path, _free_name(dest, parsed.original or path.name))
    return dest


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)  # symlinks stay links: the loader skips them
    elif src.is_file():
        shutil.copyfile(src, dest)


def _free_name(folder: Path, name: str) -> Path:
    """`name` in `folder`, or "name-2.ext" when two uploads of one student share a name."""
    target = folder / name
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    return target


_TEMP: list[Path] = []


def _base(workdir: Path | None) -> Path:
    if workdir is not None:
        return workdir
    if not _TEMP:
        _TEMP.append(Path(tempfile.mkdtemp(prefix="grader-platform-")))
        atexit.register(shutil.rmtree, _TEMP[0], True)
    return _TEMP[0]
