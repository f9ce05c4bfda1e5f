"""Loading hand-ins: real files on disk, good and bad, single and in batches, plain and zipped."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from grader.errors import GraderError
from grader.load import (
    MAX_FILE_BYTES,
    MAX_ZIP_TOTAL_BYTES,
    Submission,
    find_submissions,
    load_submission,
    looks_like_one_student,
    markdown_headings,
    natural_key,
    section_of,
    student_id,
)
from tests.builders import FILES, ROOT

BAD = FILES / "bad"
REPO = ROOT

PERCENT_PY = '''\
# %% [markdown]
# # 1. Unidades de activación

# %%
import numpy as np
x = np.zeros(3)

# %%
Aquí comparo sigmoid y relu (prosa pegada en una celda de código)
print(x)
'''

PLAIN_PY = '''\
import numpy as np
x = np.ones(2)
print(x.sum())
'''

MD_NOTEBOOK = '''\
# Trabajo 2

Texto de introducción.

```python
import numpy as np
```

## 2. Inicialización de parámetros

```python
w = np.zeros(4)
print(w)
```
'''


def write_notebook(path: Path, title: str = "# Trabajo 2", code: str = "x = 1\nprint(x)") -> Path:
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell(title),
        v4.new_code_cell(code, execution_count=3,
                         outputs=[v4.new_output("stream", name="stdout", text="1\n")]),
        v4.new_markdown_cell("## 1. Unidades de activación\nTexto"),
        v4.new_code_cell("y = 2"),
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def assert_error(sub: Submission, code: str, name: str) -> None:
    assert sub.load_error is not None, f"{sub.student} loaded but should fail with {code}"
    assert sub.load_error.code == code
    assert name in sub.load_error.message
    assert not sub.cells


# ---------------------------------------------------------------- single files

def test_good_notebook_keeps_cells_outputs_and_origins(tmp_path: Path) -> None:
    sub = load_submission(write_notebook(tmp_path / "ana_garcia.ipynb"))
    assert sub.load_error is None
    assert (sub.student, sub.kind, sub.files) == ("ana_garcia", "ipynb", ["ana_garcia.ipynb"])
    assert [c.cell_type for c in sub.cells] == ["markdown", "code", "markdown", "code"]
    code = sub.cells[1]
    assert code.source == "x = 1\nprint(x)" and code.execution_count == 3
    assert code.outputs == [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    assert type(code.outputs[0]) is dict  # plain dicts, not NotebookNode
    assert code.origin.file == "ana_garcia.ipynb" and code.origin.cell == 1 and code.origin.line == 1
    assert len(sub.digest) == 64 and sub.digest == load_submission(tmp_path / "ana_garcia.ipynb").digest


def test_digest_changes_with_content(tmp_path: Path) -> None:
    a = load_submission(write_notebook(tmp_path / "a" / "x.ipynb", code="x = 1"))
    b = load_submission(write_notebook(tmp_path / "b" / "x.ipynb", code="x = 2"))
    assert a.digest != b.digest


def test_v3_notebook_is_upgraded_with_note() -> None:
    sub = load_submission(BAD / "legacy_v3.ipynb")
    assert sub.load_error is None
    assert [c.cell_type for c in sub.cells] == ["markdown", "code", "markdown", "markdown", "code"]
    assert sub.cells[1].source.startswith("from keras.datasets import fashion_mnist")
    assert sub.cells[1].execution_count == 1
    assert sub.cells[4].outputs[0]["output_type"] == "execute_result"
    assert any("v3" in n and "legacy_v3.ipynb" in n for n in sub.notes)
    assert markdown_headings(sub) == [
        (0, 1, "Trabajo 2: Aspectos prácticos de las redes neuronales"),
        (2, 2, "1. Unidades de activación"),
    ]


@pytest.mark.parametrize("name, code", [
    ("truncated.ipynb", "invalid_json"),
    ("empty.ipynb", "empty"),
    ("captura.ipynb", "binary"),
    ("not_a_notebook.ipynb", "not_a_notebook"),
])
def test_bad_notebook_files(name: str, code: str, tmp_path: Path) -> None:
    sub = load_submission(BAD / name)
    assert_error(sub, code, name)
    assert sub.student == Path(name).stem and sub.kind == "ipynb"
    # In a batch, the bad file is one failed hand-in and the good one beside it still loads.
    (tmp_path / name).write_bytes((BAD / name).read_bytes())
    write_notebook(tmp_path / "zoe.ipynb")
    bad, good = find_submissions(tmp_path)
    assert_error(bad, code, name)
    assert good.student == "zoe" and good.load_error is None and good.code_cells


def test_oversize_notebook_is_refused_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "enorme.ipynb"
    with open(big, "wb") as fh:  # sparse: no real disk used
        fh.truncate(MAX_FILE_BYTES + 1)
    assert_error(load_submission(big), "too_large", "enorme.ipynb")


def test_schema_problems_still_load(tmp_path: Path) -> None:
    # No top-level metadata, list sources, an unknown output type: Jupyter opens this.
    path = tmp_path / "raro.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 2, "cells": ['
                    '{"cell_type": "code", "source": ["a = 1\\n", "b = 2"], "outputs": [{"output_type": "weird"}]},'
                    '{"cell_type": "markdown", "source": "# Hola"}]}')
    sub = load_submission(path)
    assert sub.load_error is None
    assert sub.cells[0].source == "a = 1\nb = 2"
    assert any("raro.ipynb" in n for n in sub.notes)


def test_percent_script_cells_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "luis.py"
    path.write_text(PERCENT_PY)
    sub = load_submission(path)
    assert sub.load_error is None and sub.kind == "py"
    assert [c.cell_type for c in sub.cells] == ["markdown", "code", "code"]
    assert [c.origin.line for c in sub.cells] == [2, 5, 9]
    lines = PERCENT_PY.splitlines()
    for cell in sub.code_cells:  # origin line points at the cell's first line in the file
        assert lines[cell.origin.line - 1] == cell.source.splitlines()[0]
    assert "prosa pegada" in sub.cells[2].source  # a syntax error is just text here
    assert section_of(sub, 2) == "1. Unidades de activación"


def test_plain_script_is_one_code_cell(tmp_path: Path) -> None:
    path = tmp_path / "marta.py"
    path.write_text(PLAIN_PY)
    sub = load_submission(path)
    assert sub.load_error is None
    assert [(c.cell_type, c.source, c.origin.line) for c in sub.cells] == [("code", PLAIN_PY.strip(), 1)]
    assert section_of(sub, 0) == "marta.py"  # a script without headings: its file name


def test_plain_script_keeps_commented_magics_as_comments(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text("# !pip install tensorflow==1.15\nimport numpy\n")
    sub = load_submission(path)
    assert "".join(c.source for c in sub.code_cells).count("!pip") == 1
    assert all(not line.startswith("!") for c in sub.code_cells for line in c.source.splitlines())


def test_markdown_notebook_fenced_blocks(tmp_path: Path) -> None:
    path = tmp_path / "eva.md"
    path.write_text(MD_NOTEBOOK)
    sub = load_submission(path)
    assert sub.load_error is None and sub.kind == "md"
    assert [c.cell_type for c in sub.cells] == ["markdown", "code", "markdown", "code"]
    assert sub.cells[3].source == "w = np.zeros(4)\nprint(w)"
    assert [c.origin.line for c in sub.code_cells] == [6, 12]
    assert section_of(sub, 3) == "2. Inicialización de parámetros"
    assert [level for _, level, _ in markdown_headings(sub)] == [1, 2]


def test_latin1_script_loads_with_note(tmp_path: Path) -> None:
    path = tmp_path / "pepe.py"
    path.write_bytes("# Inicialización\nx = 'año'\n".encode("cp1252"))
    sub = load_submission(path)
    assert sub.load_error is None and "año" in sub.cells[-1].source
    assert any("Latin-1" in n for n in sub.notes)


# ---------------------------------------------------------------- one student, several files

def make_exercise_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for n in (1, 2, 3, 4, 10):
        (folder / f"ej{n}.py").write_text(f"# %%\nresultado_{n} = {n}\n")
    (folder / "utils.py").write_text("def plot_acc(h):\n    return h\n")
    return folder


def test_folder_of_exercise_files_merged_in_order(tmp_path: Path) -> None:
    folder = make_exercise_folder(tmp_path / "ana")
    sub = load_submission(folder)
    assert sub.load_error is None and sub.student == "ana" and sub.kind == "py"
    assert sub.files == ["utils.py", "ej1.py", "ej2.py", "ej3.py", "ej4.py", "ej10.py"]
    assert [c.origin.file for c in sub.cells] == sub.files
    assert [c.index for c in sub.cells] == list(range(6))
    assert all(c.origin.cell == 0 for c in sub.cells)
    assert sub.source_dir == folder and (sub.source_dir / "utils.py").is_file()
    assert section_of(sub, 5) == "ej10.py"
    # The same folder handed to find_submissions is recognised as ONE hand-in, not a batch.
    [again] = find_submissions(folder)
    assert again.files == sub.files and again.student == "ana" and again.digest == sub.digest


def test_mixed_folder_orders_by_exercise_number_and_skips_exports(tmp_path: Path) -> None:
    folder = tmp_path / "pablo"
    folder.mkdir()
    (folder / "ejercicio_3.md").write_text(MD_NOTEBOOK)
    (folder / "Ejercicio_1_activaciones.py").write_text("a = 1\n")
    write_notebook(folder / "ejercicio2.ipynb")
    (folder / "ejercicio2.py").write_text("a = 2\n")  # export of ejercicio2.ipynb
    (folder / "informe.pdf").write_bytes(b"%PDF-1.4")
    sub = load_submission(folder)
    assert sub.kind == "mixed"
    assert sub.files == ["Ejercicio_1_activaciones.py", "ejercicio2.ipynb", "ejercicio_3.md"]
    assert any("ejercicio2.py" in n for n in sub.notes)


def test_folder_with_one_broken_file_keeps_the_rest(tmp_path: Path) -> None:
    folder = make_exercise_folder(tmp_path / "rosa")
    (folder / "ej5.ipynb").write_text("{ no es json")
    sub = load_submission(folder)
    assert sub.load_error is None and len(sub.cells) == 6
    assert [e.code for e in sub.file_errors] == ["invalid_json"]
    assert any("ej5.ipynb" in n for n in sub.notes)


@pytest.mark.parametrize("names, expected", [
    (["ej1.py", "ej2.py", "utils.py"], True),
    (["ejercicio_1.py", "exercise2.py", "part3.md", "datos.py"], True),
    (["1_activaciones.py", "2_inicializacion.ipynb"], True),
    (["ana.ipynb", "luis.ipynb"], False),
    (["ana_ej1.py", "luis_ej1.py"], False),  # same exercise twice: two students
    (["utils.py", "main.py"], False),
    (["trabajo2.ipynb", "utils.py"], True),  # a notebook that imports its own helpers
    (["trabajo2.ipynb", "ana.ipynb", "utils.py"], False),
    (["ej1.py"], False),
])
def test_one_student_heuristic(names: list[str], expected: bool) -> None:
    assert looks_like_one_student(names) is expected


# ---------------------------------------------------------------- batches

def make_batch(root: Path) -> Path:
    write_notebook(root / "ana_garcia.ipynb")
    (root / "luis.py").write_text(PERCENT_PY)
    make_exercise_folder(root / "marta")
    write_notebook(root / "pedro" / "trabajo2.ipynb")
    write_notebook(root / "pedro" / ".ipynb_checkpoints" / "trabajo2-checkpoint.ipynb")
    (root / "truncado.ipynb").write_text('{"cells": [')
    (root / "vacio").mkdir()
    (root / "vacio" / "notas.txt").write_text("olvidé subir el cuaderno")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    write_notebook(root / "__MACOSX" / "._ana_garcia.ipynb")
    (root / "lista.csv").write_text("alumno,nota\n")
    (root / "README.md").write_text("# Entregas del grupo A\n")  # the batch's own notes
    return root


def check_batch(subs: list[Submission]) -> None:
    by_name = {s.student: s for s in subs}
    assert [s.student for s in subs] == ["ana_garcia", "luis", "marta", "pedro", "truncado", "vacio"]
    for good in ("ana_garcia", "luis", "marta", "pedro"):
        assert by_name[good].load_error is None and by_name[good].code_cells
    assert by_name["pedro"].files == ["trabajo2.ipynb"]  # checkpoint copy ignored
    assert len(by_name["marta"].files) == 6
    assert_error(by_name["truncado"], "invalid_json", "truncado.ipynb")
    assert_error(by_name["vacio"], "no_notebook", "vacio")
    assert "notas.txt" in by_name["vacio"].load_error.message


def test_batch_folder(tmp_path: Path) -> None:
    check_batch(find_submissions(make_batch(tmp_path / "entregas")))


def test_batch_zip_with_wrapper_folder_and_nested_zip(tmp_path: Path) -> None:
    batch = make_batch(tmp_path / "entregas")
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as zf:  # a student who zipped her own folder
        zf.writestr("sara/ej1.py", "x = 1\n")
        zf.writestr("sara/ej2.py", "y = 2\n")
        zf.writestr("sara/otro.zip", b"PK")  # a second level is not opened
    archive = tmp_path / "descarga.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(batch.rglob("*")):
            if path.is_file():
                zf.write(path, Path("entregas") / path.relative_to(batch))
        zf.write(nested, "entregas/sara.zip")
    subs = find_submissions(archive, workdir=tmp_path / "work")
    sara = next(s for s in subs if s.student == "sara")
    assert sara.load_error is None and sara.files == ["ej1.py", "ej2.py"]
    assert (sara.source_dir / "ej1.py").read_text() == "x = 1\n"  # where capture runs it
    assert any("otro.zip" in n for n in sara.notes)
    check_batch([s for s in subs if s.student != "sara"])
    # Reloading a hand-in from its path (what a worker process does) gives the same result.
    marta = next(s for s in subs if s.student == "marta")
    assert load_submission(marta.path, student="marta").digest == marta.digest


def test_zip_unsafe_path_and_symlink_do_not_stop_the_batch(tmp_path: Path) -> None:
    batch = tmp_path / "lote"
    write_notebook(batch / "ana.ipynb")
    for name in ("traversal.zip", "symlink.zip"):
        (batch / name).write_bytes((BAD / name).read_bytes())
    subs = {s.student: s for s in find_submissions(batch, workdir=tmp_path / "w")}
    assert subs["ana"].load_error is None
    assert_error(subs["traversal"], "zip_unsafe_path", "traversal.zip")
    assert_error(subs["symlink"], "zip_symlink", "symlink.zip")
    assert not (tmp_path / "evil.py").exists() and not list(tmp_path.rglob("evil.py"))
    # Given directly, the same ZIPs become one failed Submission each.
    [direct] = find_submissions(BAD / "traversal.zip", workdir=tmp_path / "w2")
    assert direct.load_error.code == "zip_unsafe_path"


def test_zip_bomb_is_refused_before_extraction(tmp_path: Path) -> None:
    bomb = tmp_path / "bomba.zip"
    chunk = b"\0" * (16 * 1024 * 1024)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open("trabajo2.ipynb", "w", force_zip64=True) as member:
        for _ in range(MAX_ZIP_TOTAL_BYTES // len(chunk) + 2):
            member.write(chunk)
    assert bomb.stat().st_size < 5 * 1024 * 1024
    work = tmp_path / "w"
    [sub] = find_submissions(bomb, workdir=work)
    assert_error(sub, "zip_bomb", "bomba.zip")
    assert not [p for p in work.rglob("*") if p.is_file()]  # refused before writing anything
    batch = tmp_path / "lote"
    write_notebook(batch / "ana.ipynb")
    bomb.rename(batch / "bomba.zip")
    ana, bad = find_submissions(batch, workdir=work)
    assert ana.load_error is None and ana.code_cells
    assert_error(bad, "zip_bomb", "bomba.zip")


def test_zip_total_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Incompressible members (no bomb ratio) whose sum is over the limit: lowered here so that
    # the test does not need 500 MB of real data; the check itself is the one used in batches.
    monkeypatch.setattr("grader.load.zipsafe.MAX_ZIP_TOTAL_BYTES", 3000)
    archive = tmp_path / "grande.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ej1.py", os.urandom(2000))
        zf.writestr("ej2.py", os.urandom(2000))
    [sub] = find_submissions(archive, workdir=tmp_path / "w")
    assert_error(sub, "zip_too_large", "grande.zip")


def test_zip_too_many_members(tmp_path: Path) -> None:
    crowded = tmp_path / "muchos.zip"
    with zipfile.ZipFile(crowded, "w") as zf:
        for i in range(2001):
            zf.writestr(f"f{i}.py", "")
    assert_error(load_submission(crowded), "zip_too_many_files", "muchos.zip")


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "roto.zip"
    fake.write_bytes(b"esto no es un zip")
    [sub] = find_submissions(fake)
    assert_error(sub, "zip_invalid", "roto.zip")


def test_missing_path_is_the_instructors_error(tmp_path: Path) -> None:
    with pytest.raises(GraderError):
        find_submissions(tmp_path / "no_existe")


def test_duplicate_student_ids_are_made_unique(tmp_path: Path) -> None:
    write_notebook(tmp_path / "b" / "ana.ipynb")
    (tmp_path / "b" / "ana.py").write_text("x = 1\n")
    subs = find_submissions(tmp_path / "b")
    assert sorted(s.student for s in subs) == ["ana", "ana-2"]


# ---------------------------------------------------------------- the sample hand-ins

SAMPLES = sorted(p for p in (REPO / "submissions").glob("*")
                 if not p.name.startswith(".") and p.name != "README.md"
                 and (p.suffix.lower() in (".ipynb", ".py", ".md") or p.is_dir()))


@pytest.mark.skipif(not SAMPLES, reason="no sample hand-ins in submissions/ yet")
def test_every_sample_hand_in_loads() -> None:
    subs = find_submissions(REPO / "submissions")
    assert [s.student for s in subs] == sorted((student_id(p.name) for p in SAMPLES), key=natural_key)
    for sub in subs:
        assert sub.load_error is None, f"{sub.student}: {sub.load_error}"
        assert sub.code_cells, sub.student


def test_oversize_script_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    assert os.path.getsize(path) > MAX_FILE_BYTES
    assert_error(load_submission(path), "too_large", "x.py")


def test_headings_atx_setext_html_and_fences(tmp_path: Path) -> None:
    nb = v4.new_notebook(cells=[
        v4.new_code_cell("import keras"),
        v4.new_markdown_cell("Trabajo 2\n=========\n\nIntro"),
        v4.new_markdown_cell("```python\n# no es un título\n```\n### **3. Optimizadores** ###"),
        v4.new_markdown_cell('<h2 style="color:red">4. Regularización <b>y red final</b></h2>'),
        v4.new_code_cell("model.fit(x, y)"),
    ])
    nbformat.write(nb, tmp_path / "t.ipynb")
    sub = load_submission(tmp_path / "t.ipynb")
    assert markdown_headings(sub) == [
        (1, 1, "Trabajo 2"), (2, 3, "3. Optimizadores"), (3, 2, "4. Regularización y red final"),
    ]
    assert section_of(sub, 0) is None  # a notebook cell above every heading
    assert section_of(sub, 4) == "4. Regularización y red final"


def test_highly_compressible_real_notebook_in_zip_loads(tmp_path: Path) -> None:
    # verbose=1 training logs compress ~1000x; that alone must not look like a bomb.
    nb = write_notebook(tmp_path / "src" / "trabajo2.ipynb",
                        code="print('=' * 3_000_000)")
    archive = tmp_path / "ines.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ines/trabajo2.ipynb", nb.read_text().replace("1\\n", "=" * 3_000_000))
    info = zipfile.ZipFile(archive).infolist()[0]
    assert info.file_size > 500 * info.compress_size
    [sub] = find_submissions(archive, workdir=tmp_path / "w")
    assert sub.load_error is None and sub.student == "ines" and sub.code_cells


def test_student_folder_holding_only_a_zip(tmp_path: Path) -> None:
    folder = tmp_path / "lote" / "Ana Pérez_1234_assignsubmission_file_"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "trabajo.zip", "w") as zf:
        zf.writestr("trabajo/utils.py", "def f():\n    return 1\n")
        zf.writestr("trabajo/ej1.py", "from utils import f\nprint(f())\n")
    [sub] = find_submissions(tmp_path / "lote", workdir=tmp_path / "w")
    assert sub.student == "Ana Pérez_1234"
    assert sub.files == ["trabajo.zip/utils.py", "trabajo.zip/ej1.py"]
    assert (sub.source_dir / "utils.py").is_file()


def test_several_notebooks_are_merged_with_a_note(tmp_path: Path) -> None:
    write_notebook(tmp_path / "jorge" / "trabajo2.ipynb")
    write_notebook(tmp_path / "jorge" / "trabajo2_final.ipynb")
    sub = load_submission(tmp_path / "jorge")
    assert sub.files == ["trabajo2.ipynb", "trabajo2_final.ipynb"] and len(sub.cells) == 8
    assert any("trabajo2_final.ipynb" in n for n in sub.notes)


def test_uploaded_library_is_refused(tmp_path: Path) -> None:
    lib = tmp_path / "carlos" / "mi_entorno" / "lib"
    lib.mkdir(parents=True)
    for i in range(101):
        (lib / f"mod{i}.py").write_text("x = 1\n")
    assert_error(load_submission(tmp_path / "carlos"), "too_many_files", "carlos")


def test_symlinks_and_deep_json_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "fuera.py"
    secret.write_text("CLAVE = 'no debe leerse'\n")
    folder = make_exercise_folder(tmp_path / "nuria")
    (folder / "ej5.py").symlink_to(secret)
    sub = load_submission(folder)
    assert "ej5.py" not in sub.files and all("CLAVE" not in c.source for c in sub.cells)
    deep = tmp_path / "profundo.ipynb"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert_error(load_submission(deep), "invalid_json", "profundo.ipynb")


def test_corrupted_files_never_raise(tmp_path: Path) -> None:
    # Byte-level damage of a real notebook, script and ZIP (fixed seed): every result is either
    # a loaded Submission or one with a load_error, never an exception.
    rng = random.Random(7)
    good_nb = write_notebook(tmp_path / "src" / "t.ipynb").read_bytes()
    good_zip = tmp_path / "src" / "t.zip"
    with zipfile.ZipFile(good_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ana/ej1.py", PERCENT_PY)
        zf.writestr("ana/ej2.ipynb", good_nb)
    samples = {".ipynb": good_nb, ".py": PERCENT_PY.encode(), ".zip": good_zip.read_bytes()}
    codes = set()
    for i in range(150):
        suffix, data = rng.choice(sorted(samples.items()))
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        path = tmp_path / "fuzz" / f"f{i}{suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes(data))
        sub = load_submission(path, workdir=tmp_path / "w")
        if sub.load_error:
            assert path.name in sub.load_error.message
            codes.add(sub.load_error.code)
    assert {"invalid_json", "zip_invalid"} <= codes


def test_notebook_renamed_to_py_is_read_as_notebook(tmp_path: Path) -> None:
    renamed = tmp_path / "lucia.py"
    renamed.write_bytes(write_notebook(tmp_path / "x.ipynb").read_bytes())
    sub = load_submission(renamed)
    assert sub.load_error is None and [c.cell_type for c in sub.cells][:2] == ["markdown", "code"]
    assert sub.cells[1].outputs and any("lucia.py" in n for n in sub.notes)


def test_batch_of_one_student_folder_with_an_images_folder(tmp_path: Path) -> None:
    write_notebook(tmp_path / "entregas" / "Olga" / "trabajo2.ipynb")
    (tmp_path / "entregas" / "Olga" / "img").mkdir()
    (tmp_path / "entregas" / "Olga" / "img" / "curva.png").write_bytes(b"\x89PNG")
    [sub] = find_submissions(tmp_path / "entregas")
    assert sub.student == "Olga" and sub.files == ["trabajo2.ipynb"] and sub.load_error is None


def test_password_protected_zip(tmp_path: Path) -> None:
    archive = tmp_path / "secreto.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ej1.py", "x = 1\n")
    data = bytearray(archive.read_bytes())
    # Set the "encrypted" flag bit in the local and the central header, as a password tool does.
    data[6] |= 1
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    archive.write_bytes(bytes(data))
    [sub] = find_submissions(archive, workdir=tmp_path / "w")
    assert_error(sub, "zip_encrypted", "secreto.zip")
