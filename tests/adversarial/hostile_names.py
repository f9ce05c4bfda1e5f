"""Hand-ins of the adversarial batch that attack identity and names rather than the sandbox (issue 18).

Written at test time by `lay_out` (called from harness.lay_out): git cannot hold every one of
these names (bytes that are not UTF-8, a NFC and a NFD twin), and the nested ZIPs would weigh
hundreds of MB once extracted. Each notebook's one code cell raises an error carrying its own
tag, so that a result, a report and a gradebook row can be traced back to the file it came from.
Cases that need no kernel to make their point are empty files (a load error each): a kernel costs
half a minute on the shared machine.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "\u202eaicraG anA" is shown as "Ana García"
LONG_FILE = "n" * 249 + ".ipynb"  # 255 bytes, NAME_MAX
LONG_FOLDER = "d" * 255
LATIN1_NAME = b"caf\xe9.ipynb"  # not UTF-8: os.fsdecode makes a lone surrogate of \xe9

# Tag -> the hand-in (file or folder name in the batch) that carries it. Pairs collide.
TAGGED: dict[str, str | bytes] = {
    "propio-ana-minus": "ana.ipynb",
    "propio-ana-mayus": "Ana.ipynb",
    "propio-jose-nfc": unicodedata.normalize("NFC", "José.ipynb"),
    "propio-jose-nfd": unicodedata.normalize("NFD", "José.ipynb"),
    "propio-pablo-zip": "pablo.zip",
    "propio-pablo-fichero": "Pablo.ipynb",
    "propio-latin1": LATIN1_NAME,
    "propio-zips-anidados": "loader_nested_zips",
}
COLLIDING = [("propio-ana-minus", "propio-ana-mayus"), ("propio-jose-nfc", "propio-jose-nfd"),
             ("propio-pablo-zip", "propio-pablo-fichero")]
# Empty notebooks (a load error each): names of spreadsheet formulas, of the class summary, a
# right-to-left override, and names as long as a file system holds (the folder holds an empty
# trabajo.ipynb).
FORMULA_NAMES = ['=HYPERLINK("x.example","nota")', "+SUM(1,1)", "-2+3", "@SUM(1+1)"]
EMPTY = [*(f"{name}.ipynb" for name in FORMULA_NAMES), "index.ipynb", f"{RLO}aicraG anA.ipynb", LONG_FILE,
         LONG_FOLDER]
# Hand-in -> the load error it must get.
LOAD_ERRORS = {"loader_lone_surrogate": "invalid_unicode", "loader_zip_duplicate": "zip_duplicate"}
# Two ZIPs of 13 x 20 MB of zeros inside one hand-in (each member under the size at which the
# compression ratio is judged): each alone is under the 500 MB extraction limit, together not.
NESTED_MEMBERS, NESTED_MEMBER_BYTES = 13, 20 * 2**20


def tagged_notebook(tag: str) -> str:
    nb = new_notebook(cells=[new_markdown_cell("# Trabajo 2"), new_code_cell(f"raise ValueError({tag!r})")])
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nbformat.writes(nb)


def _zeros_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(NESTED_MEMBERS):
            with zf.open(f"datos_{i}.bin", "w", force_zip64=True) as member:
                for _ in range(NESTED_MEMBER_BYTES // 2**20):
                    member.write(bytes(2**20))


def lay_out(handins: Path) -> int:
    """Write every name case into the batch folder `handins`; returns how many hand-ins it added."""
    raw = os.fsencode(handins)
    for tag, name in TAGGED.items():
        text = tagged_notebook(tag).encode("utf-8")
        if name == "pablo.zip":
            with zipfile.ZipFile(handins / name, "w") as zf:
                zf.writestr("pablo/trabajo.ipynb", text)
        elif name == "loader_nested_zips":
            (handins / name).mkdir()
            (handins / name / "trabajo.ipynb").write_bytes(text)
            for k in (1, 2):
                _zeros_zip(handins / name / f"datos{k}.zip")
        else:
            path = os.path.join(raw, name if isinstance(name, bytes) else os.fsencode(name))
            with open(path, "wb") as fh:
                fh.write(text)
    for name in EMPTY:
        if name == LONG_FOLDER:
            (handins / name).mkdir()
            (handins / name / "trabajo.ipynb").write_bytes(b"")
        else:
            (handins / name).write_bytes(b"")
    surrogate = tagged_notebook("propio-surrogate").replace("propio-surrogate", "\\udc80")
    (handins / "loader_lone_surrogate.ipynb").write_text(surrogate, encoding="utf-8")
    with zipfile.ZipFile(handins / "loader_zip_duplicate.zip", "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns that it writes a duplicate: that is the point
        zf.writestr("trabajo.ipynb", tagged_notebook("propio-duplicado-1"))
        zf.writestr("trabajo.ipynb", tagged_notebook("propio-duplicado-2"))
    return len(TAGGED) + len(EMPTY) + len(LOAD_ERRORS)
