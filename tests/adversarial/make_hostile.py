"""Write the hostile hand-ins of the adversarial test suite (tests/test_adversarial.py).

Run `python tests/adversarial/make_hostile.py` to regenerate them; the output is committed. Every
notebook starts like a real "Trabajo 2" hand-in (imports, load_data, one small honest model fit on
x_train[:2000] with validation_split=0.2, epochs=1) and then attacks the grader. File names say the
attack; `CASES` says what each one tries and what the grader must answer.

Safety: these notebooks run on a shared machine. Attacks that would hurt people other than the
grader under test are bounded: nothing is deleted, overwritten or killed inside shared folders
(/tmp itself, /work, /root ...), forks and spawns are capped, and every file an attack creates is
named PWNED* so that the test can find it and remove it.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

HERE = Path(__file__).resolve().parent
if not __package__:  # run as a script: the checkout on the path, then the same imports as the tests
    sys.path.insert(0, str(HERE.parent.parent))

from tests.adversarial import hidden_attacks as hidden  # noqa: E402
from tests.adversarial.attacks import (  # noqa: E402
    ATTACKS,
    CHDIR_DAEMON,
    CROSS,
    PORTS,
    PWNED,
    SHARED_ROOTS,
    SIGNATURE_MTIME,
    SLEEP_MARKERS,
    VICTIM_MARKER,
)
from tests.adversarial.isolation_attacks import ISOLATION_ATTACKS, ISOLATION_CASES  # noqa: E402

__all__ = ["ATTACKS", "CASES", "CHDIR_DAEMON", "CROSS", "PORTS", "PWNED", "SHARED_ROOTS", "SIGNATURE_MTIME",
           "SLEEP_MARKERS", "VICTIM_MARKER", "huge_notebook", "write_all", "zip_bomb", "zip_slip"]

CASES: dict[str, str] = {
    "00_victim_honest": "honest notebook graded while 01_cross_neighbours attacks it",
    "01_cross_neighbours": "for 25 s: reads, overwrites, forges and kills other kernels of the batch",
    "timeout_infinite_loop": "while True: pass",
    "memory_bytearray_30g": "bytearray(30 * 2**30)",
    "memory_growing_list": "a list that grows by 64 MB until something stops it",
    "fork_bomb": "2 double-forked daemons (one chdir('/')), then 3000 x os.fork (children exec sleep)",
    "subprocess_spawn": "3000 x subprocess.Popen(sleep) and a nohup'ed os.system",
    "output_flood_1gb": "1 GB through print, then 128 MB each on raw fds 1 and 2",
    "read_secrets": "reads the canary in /root, ~/.ssh, the rubric, other hand-ins, the retrain cache",
    "write_outside": "creates files in /tmp, ../, the reports folder, site-packages, the checkout",
    "network_loopback": "socket.create_connection to 127.0.0.1 on the test's listening ports",
    "probe_restore_fit": "restores the real Model.fit (functools __wrapped__) and trains on test data",
    "probe_fake_events": "appends forged/garbage events (epochs=1e9, ../ digests, deep JSON)",
    "probe_overwrite_npy": "overwrites the saved x arrays with zeros and y with a pickle payload",
    "probe_lambda_payload": "a Lambda layer whose code writes a file when run outside the kernel",
    "forged_history": "final model with a fake History(val_accuracy=0.99), printed and saved",
    "delete_files": "shutil.rmtree on its own folder and on '..'",
    "kill_parent": "os.kill(os.getppid(), 9), the grader worker, then its own process group",
    "kernel_exit": "os._exit(1) after the fit",
    "kernel_segfault": "ctypes.string_at(0) after the fit",
    "loader_malformed_json": "truncated JSON",
    "loader_binary": "binary bytes with NULs",
    "loader_empty": "empty file",
    "loader_nbformat_v3": "an nbformat v3 notebook (legitimate, converted)",
    "loader_zip_slip": "ZIP with ../ and absolute member paths",
    "loader_zip_bomb": "ZIP whose notebook inflates to 300 MB",
    "loader_huge": "a 21 MB notebook (written by the test, not committed)",
    "zz_honest": "honest notebook, also graded alone for reference",
    **hidden.CASES,  # hidden training and forged claims (issue 18)
    **ISOLATION_CASES,
}

PREFIX = [
    new_markdown_cell("# Trabajo 2: Aspectos prácticos de las redes neuronales"),
    new_code_cell(textwrap.dedent("""\
        import numpy as np
        import keras
        from keras.datasets import fashion_mnist
        from keras.models import Sequential
        from keras.layers import Dense, Flatten

        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        x_train = x_train / 255.0
        x_test = x_test / 255.0""")),
    new_markdown_cell("## 1. Unidades de activación"),
    new_code_cell(textwrap.dedent("""\
        model = Sequential([
            Flatten(input_shape=(28, 28)),
            Dense(32, activation='relu'),
            Dense(10, activation='softmax'),
        ])
        model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
        history = model.fit(x_train[:2000], y_train[:2000], validation_split=0.2, epochs=1,
                            batch_size=64, verbose=1)""")),
]

HONEST_TAIL = [
    new_code_cell(textwrap.dedent(f"""\
        # {VICTIM_MARKER}
        import matplotlib.pyplot as plt
        plt.plot(history.history['accuracy'], label='train')
        plt.plot(history.history['val_accuracy'], label='val')
        plt.legend()
        plt.show()""")),
    new_markdown_cell("## 4. Regularización y red final\nLa red final es la de arriba; la evalúo una vez en test."),
    new_code_cell("print(model.evaluate(x_test, y_test, verbose=0))"),
]


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[nbformat.from_dict(c) for c in cells])
    for i, cell in enumerate(nb.cells):  # fixed ids: regenerating gives the same bytes
        cell.id = f"cell-{i}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def hostile_notebooks() -> dict[str, nbformat.NotebookNode]:
    out = {name: notebook(PREFIX + [new_code_cell(src) for src in cells])
           for name, cells in {**ATTACKS, **ISOLATION_ATTACKS}.items()}
    out["01_cross_neighbours"] = notebook([PREFIX[0], new_code_cell(CROSS), *PREFIX[1:]])
    forged = out["forged_history"]
    forged.cells.insert(4, new_markdown_cell("## 4. Regularización y red final"))
    forged.cells[-1].outputs = [new_output("stream", name="stdout", text=(
        "Epoch 1/1 - loss: 0.0500 - accuracy: 0.9900 - val_loss: 0.0500 - val_accuracy: 0.9900\n"
        "Test accuracy: 0.99\n"))]
    forged.cells.append(new_markdown_cell("Mi red final alcanza un **99 %** de accuracy en validación."))
    for i, cell in enumerate(forged.cells):
        cell.id = f"cell-{i}"
    honest = notebook(PREFIX + HONEST_TAIL)
    # The victim stays alive for 20 s after its fit, so that the attacker (started at the same time)
    # meets it whatever the scheduling; its fits are the same as zz_honest's.
    out["00_victim_honest"] = notebook(PREFIX + HONEST_TAIL + [new_code_cell(
        "import time\ntime.sleep(20)  # una celda lenta: el kernel sigue vivo tras el entrenamiento")])
    out["zz_honest"] = honest
    out.update(hidden_and_forged())
    return out


def hidden_and_forged() -> dict[str, nbformat.NotebookNode]:
    """hidden_attacks.py's hand-ins: the hidden variants of an open fit on test rows, and a forged
    hand-in next to its honest twin (the same cells and saved outputs, without the forgery)."""
    out = {name: notebook(PREFIX + [new_code_cell(src) for src in cells]) for name, cells in hidden.HIDDEN.items()}
    final = [new_markdown_cell("## 4. Regularización y red final"), new_code_cell(hidden.FINAL_FIT),
             new_code_cell(hidden.FINAL_EVAL)]
    final[1].outputs = [new_output("stream", name="stdout", text=hidden.FINAL_FIT_OUTPUT)]
    final[2].outputs = [new_output("stream", name="stdout", text=hidden.FINAL_EVAL_OUTPUT)]
    forgery = new_code_cell(hidden.FORGERY)
    forgery.outputs = [new_output("stream", name="stdout", text=hidden.FORGERY_OUTPUT)]
    out["forged_twin_honest"] = notebook(PREFIX + final)
    out["forged_workspace"] = notebook(PREFIX + final[:2] + [forgery] + final[2:])
    return out


def nbformat_v3() -> dict:
    """A legitimate 2015-era notebook (worksheets, `input`, `language`)."""
    code = PREFIX[1].source.replace("import keras\n", "")
    return {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Trabajo 2"},
        {"cell_type": "code", "language": "python", "collapsed": False, "metadata": {},
         "input": code, "outputs": [], "prompt_number": 1},
    ], "metadata": {}}]}


FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # ZIPs are byte-for-byte reproducible


def zip_slip(path: Path) -> None:
    good = nbformat.writes(notebook(PREFIX))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("trabajo2.ipynb", f"../../{PWNED}-zip.ipynb", f"/tmp/{PWNED}-zip-abs.ipynb"):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, good)


def zip_bomb(path: Path, inflated: int = 300 * 2**20) -> None:
    """One member that inflates to `inflated` bytes of spaces (ratio ~1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo("trabajo2.ipynb", date_time=FIXED_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            block = b" " * 2**20
            for _ in range(inflated // len(block)):
                member.write(block)


def huge_notebook(path: Path, size: int = 21 * 2**20) -> None:
    """A valid notebook over the 20 MB load limit (a saved output full of base64 'images')."""
    nb = notebook(PREFIX)
    nb.cells[-1].outputs = [new_output("display_data", data={"image/png": "A" * size})]
    path.write_text(nbformat.writes(nb), encoding="utf-8")


def write_all(folder: Path = HERE) -> list[Path]:
    """Write every committed hostile hand-in into `folder`; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in hostile_notebooks().items():
        path = folder / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb), encoding="utf-8")
        written.append(path)
    loaders = {
        "loader_malformed_json.ipynb": b'{"cells": [{"cell_type": "code", "source": "print(1)"',
        "loader_binary.ipynb": bytes(range(256)) * 64,
        "loader_empty.ipynb": b"",
        "loader_nbformat_v3.ipynb": json.dumps(nbformat_v3(), indent=1).encode(),
    }
    for name, data in loaders.items():
        (folder / name).write_bytes(data)
        written.append(folder / name)
    zip_slip(folder / "loader_zip_slip.zip")
    zip_bomb(folder / "loader_zip_bomb.zip")
    written += [folder / "loader_zip_slip.zip", folder / "loader_zip_bomb.zip"]
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"{p.stat().st_size:>9}  {p.name}")
