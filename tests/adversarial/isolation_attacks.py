"""Attacks on cross-student isolation and on the grader's own limits (issue 18, h2): cell sources in
student style, put after make_hostile.PREFIX like the other attacks. The checks are in
isolation_checks.py; the 8 MB code cell is written by the harness (`huge_code_cell`), not committed.
"""

from __future__ import annotations

from pathlib import Path

# Each reads what it can, prints it between these marks (the checks parse it back from the
# executed notebook), then raises: the stop is what the report shows. The cells build the mark at
# run time: the cell's own text (IPython's history, read through an fd) must not contain it.
SEEN = "VISTO-JSON"
_MARK = "marca = 'VISTO' + '-' + 'JSON'"

ISOLATION_ATTACKS: dict[str, list[str]] = {
    "iso_fd_snoop": [f"""\
import json, os
{_MARK}
# ¿qué descriptores heredó el kernel? los de otra entrega serían un tesoro
botin = {{}}
for carpeta in ('/proc/self/fd', '/dev/fd'):
    for fd in os.listdir(carpeta):
        ruta = os.path.join(carpeta, fd)
        try:
            destino = os.readlink(ruta)
        except OSError:
            continue
        texto = ''
        if destino.startswith('/'):
            try:
                with open(ruta, 'rb') as f:
                    texto = f.read(20000).decode('utf-8', 'replace')
            except OSError as e:
                texto = 'ERR ' + str(e)
        botin[carpeta + '/' + fd] = [destino, texto]
print(marca + json.dumps(botin) + marca)
raise RuntimeError('descriptores: ' + ', '.join(sorted(d for d, _ in botin.values())))"""],
    "iso_proc_cmdline": [f"""\
import json, os
{_MARK}
def leer(ruta):
    try:
        with open(ruta, 'rb') as f:
            return f.read(200000).replace(bytes(1), b' ').decode('utf-8', 'replace')
    except OSError as e:
        return 'ERR ' + str(e)
# la línea de órdenes del sandbox, su entorno y sus montajes: ¿nombran lo que esconde?
visto = {{r: leer(r) for r in ('/proc/1/cmdline', '/proc/1/environ', '/proc/self/mounts',
                               '/proc/self/mountinfo', '/proc/self/cmdline', '/proc/self/environ')}}
visto['raiz'] = sorted(os.listdir('/'))
print(marca + json.dumps(visto) + marca)
raise RuntimeError('montajes: ' + visto['/proc/self/mounts'][:2000])"""],
    "iso_disk_flood": ["""\
# guardo "copias de seguridad" de los datos: 6 x 500 MB
bloque = bytes(2**20)
for n in range(6):
    with open(f'copia_{n}.bin', 'wb') as f:
        for _ in range(500):
            f.write(bloque)
print('escrito')"""],
    "iso_inode_flood": ["""\
import os
os.makedirs('lotes', exist_ok=True)
for i in range(741000):  # un fichero por imagen aumentada
    open(f'lotes/{i}.txt', 'w').close()
print('creados')"""],
    # The kernel only records fits; the grader's retrain child gets the work and its memory limit.
    "iso_full_batch_fit": ["""\
ancha = Sequential([
    Flatten(input_shape=(28, 28)),
    Dense(8192, activation='relu'),
    Dense(8192, activation='relu'),
    Dense(10, activation='softmax'),
])
ancha.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
ancha.fit(x_train, y_train, validation_split=0.2, epochs=1, batch_size=len(x_train))"""],
    "iso_long_epoch": ["""\
lenta = Sequential([
    Flatten(input_shape=(28, 28)),
    Dense(8192, activation='relu'),
    Dense(8192, activation='relu'),
    Dense(10, activation='softmax'),
])
lenta.compile(optimizer='sgd', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
lenta.fit(x_train, y_train, validation_split=0.2, epochs=1, batch_size=1)  # una época de horas"""],
}

ISOLATION_CASES: dict[str, str] = {
    "iso_fd_snoop": "lists /proc/self/fd and /dev/fd and reads every file descriptor it inherited",
    "iso_proc_cmdline": "reads /proc/1/cmdline, /proc/1/environ and its mounts, looking for hidden folders",
    "iso_disk_flood": "writes 6 x 500 MB files in its work folder",
    "iso_inode_flood": "creates 741,000 empty files in its work folder",
    "iso_full_batch_fit": "fits two 8192-unit layers with batch_size=len(x_train): gigabytes in the retrain",
    "iso_long_epoch": "fits two 8192-unit layers with batch_size=1: one epoch of hours in the retrain",
    "iso_huge_code_cell": "an 8 MB code cell (110,000 generated lines; written by the test, not committed)",
}


def huge_code_cell(path: Path, prefix: list, notebook) -> None:
    """PREFIX and one 8 MB cell that the kernel compiles and skips (`if False:`): a static-analysis
    bomb that costs the kernel nothing."""
    from nbformat import writes
    from nbformat.v4 import new_code_cell

    body = "".join(f"    capa_{i} = Dense({i % 512 + 1}, activation='relu')  # capa generada número {i}\n"
                   for i in range(110_000))
    path.write_text(writes(notebook(prefix + [new_code_cell("if False:\n" + body)])), encoding="utf-8")
