"""Stage 1, load: find hand-ins and read them into one `Submission` type.

`discover` finds hand-ins (files, folders, ZIPs of a class) and merges one student's files;
`reader` reads one file into cells; `names` turns file names into ids and an order; `zipsafe`
extracts ZIPs safely; `submission` holds the types. The other stages import from here.
"""

from grader.load.discover import (
    MAX_HANDIN_FILES,
    find_submissions,
    load_submission,
    markdown_headings,
    section_of,
)
from grader.load.names import (
    NOTEBOOK_SUFFIXES,
    clean_id,
    display_name,
    exercise_number,
    file_stem,
    id_key,
    is_ignored,
    looks_like_one_student,
    natural_key,
    printable,
    resolve_collisions,
    student_id,
)
from grader.load.reader import MAX_FILE_BYTES, read_cells
from grader.load.submission import Cell, FileProblem, LoadError, Origin, Submission
from grader.load.zipsafe import MAX_ZIP_MEMBERS, MAX_ZIP_RATIO, MAX_ZIP_TOTAL_BYTES, ExtractBudget, extract_zip

__all__ = [
    "MAX_FILE_BYTES", "MAX_HANDIN_FILES", "MAX_ZIP_MEMBERS", "MAX_ZIP_RATIO", "MAX_ZIP_TOTAL_BYTES",
    "NOTEBOOK_SUFFIXES", "Cell", "ExtractBudget", "FileProblem", "LoadError", "Origin", "Submission",
    "clean_id", "display_name", "exercise_number", "extract_zip", "file_stem", "find_submissions",
    "id_key", "is_ignored", "load_submission", "looks_like_one_student", "markdown_headings",
    "natural_key", "printable", "read_cells", "resolve_collisions", "section_of", "student_id",
]
