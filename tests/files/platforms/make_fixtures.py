"""Writes the course-platform fixtures used by tests/test_platforms.py.

Refresh: python tests/files/platforms/make_fixtures.py

The names follow what the platforms write (see grader/load/platforms.py for the formats): Moodle's
"download all submissions" ZIP in 4.1+ folders, 3.x folders (trailing "_"), flat mode, online text,
blind marking and teams; Canvas' submissions ZIP (LATE, several files, text entry, anonymous); the
Moodle grading worksheet in Spanish (BOM, decimal comma, LF) and English (decimal point, CRLF), as
PHP's fputcsv quotes it; the Canvas gradebook export. The notebooks are tiny but real: each trains
one small model for one epoch on 1500 Fashion-MNIST images, so a round trip grades in seconds.
Output is byte-for-byte reproducible (fixed ZIP dates, fixed cell ids).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
_DATE = (2026, 11, 30, 23, 10, 0)

SETUP = """\
import numpy as np
from tensorflow import keras
from keras.datasets import fashion_mnist
(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train, x_test = x_train[:1500] / 255.0, x_test / 255.0
y_train = y_train[:1500]
"""
FINAL = """\
model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense({units}, activation='relu'), keras.layers.Dropout(0.2),
    keras.layers.Dense(10, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
history = model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.2)
"""


def notebook(units: int) -> bytes:
    """A tiny Trabajo 2 notebook (nbformat 4.5 JSON with fixed cell ids)."""
    sources = [("markdown", "# Trabajo 2: Aspectos prácticos de las redes neuronales"), ("code", SETUP),
               ("markdown", "## 4. Regularización y red final"), ("code", FINAL.format(units=units)),
               ("code", "model.evaluate(x_test, y_test)")]
    cells = []
    for i, (kind, source) in enumerate(sources):
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return (json.dumps(nb, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def script(text: str) -> bytes:
    return text.encode("utf-8")


ONLINE_TEXT = "<p>Entrego el cuaderno adjunto. ¡Un saludo!</p>".encode()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, _DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.flag_bits |= 0x800  # UTF-8 names, as Moodle's and Canvas' zip writers set
            zf.writestr(info, data)
    path.write_bytes(buffer.getvalue())
    return path


def fputcsv(row: list[str], delimiter: str = ",") -> str:
    """One line as PHP's fputcsv writes it (Moodle's worksheet): quoted when it holds a delimiter,
    a quote, a space, a tab, a backslash or a line break."""
    out = []
    for value in row:
        if any(ch in value for ch in (delimiter, '"', " ", "\t", "\\", "\r", "\n")):
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return delimiter.join(out)


ES_HEADER = ["Identificador", "Nombre completo", "Dirección de correo", "Estado", "Calificación",
             "Calificación máxima", "La calificación puede ser cambiada", "Última modificación (entrega)",
             "Última modificación (calificación)", "Comentarios de retroalimentación"]
EN_HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum grade",
             "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
PEOPLE = [("1001", "Ana García López", "ana.garcia@alumnos.example.es"),
          ("1002", "Jorge Pérez Núñez", "jorge.perez@alumnos.example.es"),
          ("1003", "Lucía Martín", "lucia.martin@alumnos.example.es"),
          ("1004", "Sin Entrega Nadie", "sin.entrega@alumnos.example.es")]


def worksheet_es() -> bytes:
    lines = [fputcsv(ES_HEADER)]
    for pid, name, mail in PEOPLE:
        handed = pid != "1004"
        comment = "" if handed else 'Sin entrega; "avisado", ver correo\ndel 1 de diciembre'
        lines.append(fputcsv([f"Participante {pid}", name, mail,
                              "Enviado para calificar" if handed else "No entregado", "", "10,00", "Sí",
                              "lunes, 30 de noviembre de 2026, 23:10" if handed else "-", "-", comment]))
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def worksheet_en() -> bytes:
    lines = [fputcsv(EN_HEADER)]
    for pid, name, mail in PEOPLE:
        lines.append(fputcsv([f"Participant {pid}", name, mail, "Submitted for grading", "", "100.00", "Yes",
                              "Monday, 30 November 2026, 11:10 PM", "-", ""]))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def worksheet_missing_column() -> bytes:
    header = [h for h in ES_HEADER if h not in ("Calificación máxima", "Última modificación (calificación)")]
    row = ["Participante 1001", "Ana García López", "ana.garcia@alumnos.example.es", "Enviado para calificar",
           "", "Sí", "-", ""]
    return ("\ufeff" + fputcsv(header) + "\n" + fputcsv(row) + "\n").encode("utf-8")


def canvas_gradebook() -> bytes:
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Práctica 1 (5400)", "Trabajo 2 (5501)",
              "Current Score", "Unposted Current Score", "Final Score", "Unposted Final Score"]
    rows = [["    Points Possible", "", "", "", "", "5.00", "10.00", "(read only)", "(read only)", "(read only)",
             "(read only)"],
            ["García López, Ana", "2001", "A001", "ana.garcia", "Grupo 1", "4.50", "", "90", "90", "90", "90"],
            ["Pérez Núñez, Jorge", "2002", "A002", "jorge.perez", "Grupo 1", "3.00", "", "60", "60", "60", "60"],
            ["Martín, Lucía", "2003", "A003", "lucia.martin", "Grupo 2", "", "", "", "", "0", "0"],
            ["Student, Test", "2999", "", "", "Grupo 1", "", "", "", "", "", ""]]
    lines = []
    for row in [header, *rows]:
        lines.append(",".join(f'"{v}"' if any(c in v for c in ',"') else v for v in row))
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


def inner_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, _DATE), data)
    return buffer.getvalue()


def fixtures() -> dict[str, bytes | dict[str, bytes]]:
    """file name -> bytes (CSV) or ZIP members."""
    ana, jorge, lucia = "Ana García López_1001", "Jorge Pérez Núñez_1002", "Lucía Martín_1003"
    return {
        # Moodle 4.1+: one folder per participant and plugin; a sub-folder keeps the student's own path.
        "moodle4_folders.zip": {
            f"{ana}_assignsubmission_file/trabajo2.ipynb": notebook(16),
            f"{jorge}_assignsubmission_file/entrega/trabajo2.ipynb": notebook(24),
            f"{lucia}_assignsubmission_file/trabajo2.ipynb": notebook(32),
            f"{lucia}_assignsubmission_onlinetext/onlinetext.html": ONLINE_TEXT,
        },
        "moodle3_folders.zip": {
            f"{ana}_assignsubmission_file_/trabajo2.ipynb": notebook(16),
            f"{jorge}_assignsubmission_file_/entrega.zip": inner_zip({"trabajo2.ipynb": notebook(24)}),
        },
        "moodle_flat.zip": {
            f"{ana}_assignsubmission_file_ej1.py": script("print('ejercicio 1')\n"),
            f"{ana}_assignsubmission_file_ej2.py": script("print('ejercicio 2')\n"),
            f"{jorge}_assignsubmission_file_trabajo2.ipynb": notebook(24),
            f"{lucia}_assignsubmission_onlinetext_onlinetext.html": ONLINE_TEXT,
        },
        "moodle_blind.zip": {
            "Participante_5001_assignsubmission_file/trabajo2.ipynb": notebook(16),
            "Participant_5002_assignsubmission_file/trabajo2.ipynb": notebook(24),
        },
        "moodle_team.zip": {
            "Grupo A_71_assignsubmission_file/trabajo2.ipynb": notebook(16),
            "Grupo B_72_assignsubmission_file/trabajo2.ipynb": notebook(24),
        },
        "moodle_repeated_id.zip": {
            f"{ana}_assignsubmission_file/trabajo2.ipynb": notebook(16),
            "Ana Garcia Lopez_1001_assignsubmission_file/trabajo2.ipynb": notebook(24),
        },
        "canvas_submissions.zip": {
            "garcialopezana_2001_90001_trabajo2.ipynb": notebook(16),
            "pereznunezjorge_LATE_2002_90002_ej1.py": script("print('ejercicio 1')\n"),
            "pereznunezjorge_LATE_2002_90003_ej2.py": script("print('ejercicio 2')\n"),
            "martínlucía_2003_text.html": ONLINE_TEXT,
            "martínlucía_2003_90004_trabajo2-1.ipynb": notebook(32),
        },
        "canvas_anonymous.zip": {
            "anon_Bc4dE_90011_trabajo2.ipynb": notebook(16),
            "anon_Xy7Qz_LATE_90012_trabajo2.ipynb": notebook(24),
        },
        "mixed_platforms.zip": {
            f"{ana}_assignsubmission_file/trabajo2.ipynb": notebook(16),
            "pereznunezjorge_2002_90002_trabajo2.ipynb": notebook(24),
            "entrega_suelta.ipynb": notebook(32),
        },
        "moodle_worksheet_es.csv": worksheet_es(),
        "moodle_worksheet_en.csv": worksheet_en(),
        "moodle_worksheet_missing_column.csv": worksheet_missing_column(),
        "canvas_gradebook.csv": canvas_gradebook(),
    }


def write_all(folder: Path = HERE) -> list[Path]:
    written = []
    for name, content in fixtures().items():
        if isinstance(content, dict):
            written.append(write_zip(folder / name, content))
        else:
            (folder / name).write_bytes(content)
            written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
