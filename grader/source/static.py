"""Static facts about a hand-in, read with `ast` without running it (goes into `Trace.static`).

This is what still grades a notebook that crashes in cell 3: which fits it makes and how they
validate, which activations / initializers / optimizers / regularisers it names, where it evaluates,
and which cells are not even Python. Every fact carries its cell (0-based index into
`Submission.cells`) and line (1-based inside that cell). The accuracies a student printed in the
SAVED outputs are read by `reported.py`.

Schema of `analyze()` (= `Trace.static`; every fact has "cell", "line", "end_line", and "function"
when inside a def): `syntax_errors` [{cell, line, msg, text}]; `imports` [{module, names}];
`fits` [{call, target, x, y, kwargs, validation_split (float|None), validation_data, epochs,
batch_size, callbacks}] (argument values as source text); `evals` [{kind, target, args, kwargs}];
`compiles` [{target, optimizer, loss, metrics}]; `models` [{kind, target}]; `layers` [{type, units,
activation, activation_source, kernel_initializer, initializer_source, target}]; `initializers`,
`optimizers` (+ learning_rate), `activations` [{name, source, arg, via?}] with canonical names;
`regularization` [{kind: Dropout|BatchNormalization|EarlyStopping|l1|l2|l1_l2|..., source, rate?,
monitor?}]; `train_slices` [{target, base, source, start, stop, test_size?, train_size?}];
`mentions` [{kind, name, source}] (plain strings naming an activation/initializer/optimizer);
`magics` [{cell, line, text}]; `code_cells`, `uses_fashion_mnist`, `uses_keras`, `version`.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from grader.load import Cell, Submission
from grader.source.parsed import MAX_CELL_CHARS, parse_cell, strip_magics

__all__ = ["analyze", "strip_magics"]
from grader.source.train_steps import cell_steps, class_like, method_call, record_assignments

STATIC_VERSION = 1
_MAX_FACTS = 5000  # per kind
_FACT_LISTS = ("syntax_errors", "imports", "fits", "evals", "compiles", "models", "layers", "initializers",
               "optimizers", "activations", "regularization", "train_slices", "mentions", "magics", "unanalyzed",
               "train_steps")

_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}

LAYER_TYPES = {
    "Dense", "Dropout", "Flatten", "BatchNormalization", "Activation", "Reshape", "Input", "InputLayer",
    "Conv2D", "MaxPooling2D", "GaussianNoise", "AlphaDropout", "LayerNormalization",
}
REGULARIZER_CALLS = {
    "Dropout": "Dropout", "AlphaDropout": "Dropout", "GaussianNoise": "GaussianNoise", "SpatialDropout2D": "Dropout",
    "BatchNormalization": "BatchNormalization", "EarlyStopping": "EarlyStopping",
    "l1": "l1", "l2": "l2", "l1_l2": "l1_l2", "L1": "l1", "L2": "l2", "L1L2": "l1_l2",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Spellings students use (strings, classes, legacy aliases) -> one canonical name. Keys are _key()ed.
_INITIALIZERS = {
    "zeros": "zeros", "zero": "zeros", "ones": "ones", "one": "ones", "constant": "constant",
    "randomnormal": "random_normal", "normal": "random_normal", "truncatednormal": "truncated_normal",
    "henormal": "he_normal", "glorotnormal": "glorot_normal", "lecunnormal": "lecun_normal",
    "xaviernormal": "glorot_normal", "randomuniform": "random_uniform", "uniform": "random_uniform",
    "glorotuniform": "glorot_uniform", "xavieruniform": "glorot_uniform", "heuniform": "he_uniform",
    "lecununiform": "lecun_uniform", "orthogonal": "orthogonal", "identity": "identity",
    "variancescaling": "variance_scaling",
}
_OPTIMIZERS = {
    "sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
    "adamax": "Adamax", "nadam": "Nadam", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion", "lamb": "Lamb",
    "adafactor": "Adafactor",
}
_ACTIVATIONS = {
    "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax", "elu": "elu", "selu": "selu",
    "softplus": "softplus", "softsign": "softsign", "leakyrelu": "leaky_relu", "prelu": "prelu",
    "linear": "linear", "swish": "swish", "silu": "silu", "gelu": "gelu", "hardsigmoid": "hard_sigmoid",
    "exponential": "exponential", "relu6": "relu6", "mish": "mish",
}


# Short aliases that are also everyday labels ("normal" next to 'random_uniform'): only trusted
# where Keras reads them (kernel_initializer='normal'), never as loose strings.
_AMBIGUOUS = {"normal", "uniform", "linear"}


def normalize_initializer(name: str) -> str | None:
    """'zero', 'Zeros', 'RandomNormal', 'normal' ... -> 'zeros', 'random_normal'; None if unknown."""
    return _INITIALIZERS.get(_key(name))


def normalize_optimizer(name: str) -> str | None:
    """'sgd', 'SGD', 'rmsprop', 'Adam' ... -> 'SGD', 'RMSprop', 'Adam'; None if unknown."""
    return _OPTIMIZERS.get(_key(name))


def normalize_activation(name: str) -> str | None:
    """'relu', 'ReLU', tf.nn.sigmoid's 'sigmoid', 'LeakyReLU' ... -> 'relu', 'leaky_relu'; None if unknown."""
    return _ACTIVATIONS.get(_key(name))


def analyze(sub: Submission) -> dict[str, Any]:
    """All static facts of a submission, JSON-safe."""
    facts: dict[str, Any] = {
        "version": STATIC_VERSION,
        "code_cells": 0,
        "uses_fashion_mnist": False,
        "uses_keras": False,
        **{kind: [] for kind in _FACT_LISTS},
    }
    assigned: dict[str, str] = {}  # name -> source of its last assignment, for train_steps
    for cell in sub.code_cells:
        facts["code_cells"] += 1
        parsed = parse_cell(cell.source)
        if parsed.too_large:
            facts["unanalyzed"].append({"cell": cell.index, "reason": "too_large", "chars": len(cell.source),
                                        "limit": MAX_CELL_CHARS})
            continue
        source, tree, exc = parsed.source, parsed.tree, parsed.error
        facts["magics"] += [{"cell": cell.index, "line": n, "text": t} for n, t in parsed.magics]
        if source is None:
            continue
        if re.search(r"fashion[-_ ]?mnist", cell.source, re.IGNORECASE):
            facts["uses_fashion_mnist"] = True
        if isinstance(exc, (SyntaxError, ValueError)):  # ValueError: null bytes (Python < 3.12)
            line = getattr(exc, "lineno", None) or 1
            msg = getattr(exc, "msg", None) or str(exc)
            facts["syntax_errors"].append(
                {"cell": cell.index, "line": line, "msg": msg, "text": (getattr(exc, "text", "") or "").strip()[:200]}
            )
            continue
        if tree is None:  # RecursionError, MemoryError
            facts["unanalyzed"].append({"cell": cell.index, "reason": "too deeply nested to parse"})
            continue
        try:
            visitor = _CellVisitor(cell, source, facts, tree)
            visitor.visit(tree)
            record_assignments(tree, visitor.seg, assigned)
            facts["train_steps"] += cell_steps(cell.index, tree, visitor.seg, assigned)
        except RecursionError:
            # Valid but absurdly nested code: keep what was found before the depth ran out.
            facts["unanalyzed"].append({"cell": cell.index, "reason": "too deeply nested to analyse"})
    facts["uses_keras"] = facts["uses_keras"] or bool(facts["fits"] and facts["models"])
    for kind in _FACT_LISTS:  # a generated 100k-layer cell must not bloat the trace
        if len(facts[kind]) > _MAX_FACTS:
            facts.setdefault("truncated", {})[kind] = len(facts[kind])
            del facts[kind][_MAX_FACTS:]
    return facts


class _CellVisitor(ast.NodeVisitor):
    def __init__(self, cell: Cell, source: str, facts: dict[str, Any], tree: ast.AST):
        self.cell = cell
        self.source = source
        self.lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", source)
        self.facts = facts
        self.functions: list[str] = []
        self.targets: dict[int, str] = {}  # id(call node) -> assigned name
        # String constants of the cell: a loop `for act in ["sigmoid", "relu"]` feeding activation=act.
        # Only constants inside list/tuple/set/dict literals: those are the "configurations to try".
        self.constants = sorted({
            (n.value, n.lineno)
            for coll in ast.walk(tree) if isinstance(coll, (ast.List, ast.Tuple, ast.Set, ast.Dict))
            for n in ast.iter_child_nodes(coll) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }, key=lambda c: (c[1], c[0]))
        self.seen_variables: set[tuple[str, str]] = set()
        self._mentions(tree)

    # -- helpers ---------------------------------------------------------------------------------
    def seg(self, node: ast.AST | None) -> str | None:
        if node is None:
            return None
        text = self._segment(node)
        return text if text is not None else ast.unparse(node)

    def _segment(self, node: ast.AST) -> str | None:
        """ast.get_source_segment without re-splitting the cell on every call (col offsets are UTF-8)."""
        try:
            first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined,operator]
            start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        except AttributeError:
            return None
        if last is None or end is None or not 0 <= first <= last < len(self.lines):
            return None
        if first == last:
            return self.lines[first].encode()[start:end].decode(errors="replace")
        head = self.lines[first].encode()[start:].decode(errors="replace")
        tail = self.lines[last].encode()[:end].decode(errors="replace")
        return head + "".join(self.lines[first + 1:last]) + tail

    def fact(self, node: ast.AST, **values: Any) -> dict[str, Any]:
        out = {"cell": self.cell.index, "line": node.lineno, "end_line": getattr(node, "end_lineno", node.lineno)}
        if self.functions:
            out["function"] = self.functions[-1]
        out.update(values)
        return out

    def from_variable(self, kind: str, value: ast.AST, arg: str) -> None:
        """A keyword fed by a variable: record the matching string constants of the cell instead."""
        normalize = {"activations": normalize_activation, "initializers": normalize_initializer,
                     "optimizers": normalize_optimizer}[kind]
        if (kind, arg) in self.seen_variables:
            return
        self.seen_variables.add((kind, arg))
        for text, line in self.constants:
            name = normalize(text) if _key(text) not in _AMBIGUOUS else None
            if name:
                self.facts[kind].append(
                    {"cell": self.cell.index, "line": line, "end_line": line, "name": name, "source": repr(text),
                     "arg": arg, "via": self.seg(value)}
                )

    def _mentions(self, tree: ast.AST) -> None:
        """Every string in the code that names an activation, initializer or optimizer, e.g. the
        'sigmoid' of `crear_modelo('sigmoid')`; what static grading falls back on for helper functions."""
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
                continue
            if _key(node.value) in _AMBIGUOUS:
                continue
            for kind, normalize in (("activation", normalize_activation), ("initializer", normalize_initializer),
                                    ("optimizer", normalize_optimizer)):
                name = normalize(node.value)
                if name:
                    self.facts["mentions"].append(
                        {"cell": self.cell.index, "line": node.lineno, "end_line": node.lineno, "kind": kind,
                         "name": name, "source": repr(node.value)}
                    )

    # -- visitors --------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(node, alias.name, [])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._import(node, node.module or "", [a.name for a in node.names])

    def _import(self, node: ast.AST, module: str, names: list[str]) -> None:
        self.facts["imports"].append(self.fact(node, module=module, names=names))
        if module.split(".")[0] in ("keras", "tensorflow"):
            self.facts["uses_keras"] = True

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and isinstance(node.targets[0], (ast.Name, ast.Attribute)):
            self.targets[id(node.value)] = self.seg(node.targets[0]) or ""
        if isinstance(node.value, ast.Subscript):
            self._train_slice(node.targets[0], node.value)
        elif isinstance(node.value, ast.Tuple) and isinstance(node.targets[0], ast.Tuple):
            for target, value in zip(node.targets[0].elts, node.value.elts):
                if isinstance(value, ast.Subscript):
                    self._train_slice(target, value)
        self.generic_visit(node)

    def _train_slice(self, target: ast.AST, sub: ast.Subscript) -> None:
        base = self.seg(sub.value) or ""
        if "train" not in base.lower() or not isinstance(sub.slice, ast.Slice):
            return
        bounds = [_const_int(b) for b in (sub.slice.lower, sub.slice.upper)]
        self.facts["train_slices"].append(
            self.fact(sub, target=self.seg(target), base=base, source=self.seg(sub), start=bounds[0], stop=bounds[1])
        )

    def visit_Call(self, node: ast.Call) -> None:
        callee = _dotted(node.func)
        last = callee.rsplit(".", 1)[-1]
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        method = method_call(node)[0]
        if method in ("fit", "fit_generator"):
            self._fit(node, callee, kwargs)
        elif isinstance(node.func, ast.Attribute) and last in ("evaluate", "predict", "predict_classes"):
            self.facts["evals"].append(
                self.fact(node, kind="evaluate" if last == "evaluate" else "predict", target=self.seg(node.func.value),
                          args=[self.seg(a) for a in node.args], kwargs={k: self.seg(v) for k, v in kwargs.items()})
            )
        elif isinstance(node.func, ast.Attribute) and last == "compile":
            self._compile(node, kwargs)
        if last in ("Sequential", "Model"):
            self.facts["models"].append(self.fact(node, kind=last, target=self.targets.get(id(node))))
        if last in LAYER_TYPES:
            self._layer(node, last, kwargs)
        if last in ("load_data",) and "fashion" in callee.lower():
            self.facts["uses_fashion_mnist"] = True
        if last == "train_test_split":
            size = kwargs.get("test_size") or kwargs.get("train_size")
            self.facts["train_slices"].append(
                self.fact(node, target=self.targets.get(id(node)), base=self.seg(node.args[0]) if node.args else "",
                          source=self.seg(node), test_size=_const_float(kwargs.get("test_size")),
                          train_size=_const_float(kwargs.get("train_size")), size_source=self.seg(size))
            )
        self._named_things(node, callee, last, kwargs)
        self.generic_visit(node)

    def _fit(self, node: ast.Call, callee: str, kwargs: dict[str, ast.AST]) -> None:
        _, obj, args = method_call(node)
        pos = [self.seg(a) for a in args]
        target = self.seg(obj)
        via = "getattr" if isinstance(node.func, ast.Call) else None
        if pos and class_like(obj, target):
            # Called through the class: the model is the first argument, the data comes after it.
            target, pos, via = pos[0], pos[1:], "class"
        split = kwargs.get("validation_split")
        extra = {"via": via} if via else {}
        self.facts["fits"].append(
            self.fact(
                node, call=callee, target=target, **extra,
                x=self.seg(kwargs.get("x")) or (pos[0] if pos else None),
                y=self.seg(kwargs.get("y")) or (pos[1] if len(pos) > 1 else None),
                kwargs={k: self.seg(v) for k, v in kwargs.items()},
                validation_split=_const_float(split), validation_data=self.seg(kwargs.get("validation_data")),
                epochs=self.seg(kwargs.get("epochs")) or (pos[3] if len(pos) > 3 else None),
                batch_size=self.seg(kwargs.get("batch_size")) or (pos[2] if len(pos) > 2 else None),
                callbacks=self.seg(kwargs.get("callbacks")),
            )
        )
        self.facts["uses_keras"] = True

    def _compile(self, node: ast.Call, kwargs: dict[str, ast.AST]) -> None:
        opt = kwargs.get("optimizer") or (node.args[0] if node.args else None)
        self.facts["compiles"].append(
            self.fact(node, target=self.seg(node.func.value), optimizer=self.seg(opt),  # type: ignore[attr-defined]
                      loss=self.seg(kwargs.get("loss")), metrics=self.seg(kwargs.get("metrics")))
        )
        if isinstance(opt, ast.Constant) and isinstance(opt.value, str) and normalize_optimizer(opt.value):
            self.facts["optimizers"].append(self.fact(opt, name=normalize_optimizer(opt.value), source=self.seg(opt),
                                                      learning_rate=None))
        elif isinstance(opt, (ast.Name, ast.Attribute, ast.Subscript)):
            self.from_variable("optimizers", opt, "optimizer")

    def _layer(self, node: ast.Call, last: str, kwargs: dict[str, ast.AST]) -> None:
        units = kwargs.get("units") or (node.args[0] if node.args and last == "Dense" else None)
        act = kwargs.get("activation")
        if last == "Activation" and node.args:
            act = node.args[0]
        init = kwargs.get("kernel_initializer")
        self.facts["layers"].append(
            self.fact(node, type=last, units=self.seg(units), activation=_name_of(act, normalize_activation),
                      activation_source=self.seg(act), kernel_initializer=_name_of(init, normalize_initializer),
                      initializer_source=self.seg(init), target=self.targets.get(id(node)))
        )

    def _named_things(self, node: ast.Call, callee: str, last: str, kwargs: dict[str, ast.AST]) -> None:
        init_class = normalize_initializer(last) if last[:1].isupper() else None
        if init_class:
            self.facts["initializers"].append(self.fact(node, name=init_class, source=self.seg(node), arg=None))
        opt_class = normalize_optimizer(last) if last[:1].isupper() else None
        if opt_class:
            lr = kwargs.get("learning_rate") or kwargs.get("lr") or (node.args[0] if node.args else None)
            self.facts["optimizers"].append(self.fact(node, name=opt_class, source=self.seg(node), learning_rate=self.seg(lr)))
        if last in ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"):
            self.facts["activations"].append(self.fact(node, name=normalize_activation(last), source=self.seg(node), arg=None))
        if last in REGULARIZER_CALLS:
            self._regularizer(node, REGULARIZER_CALLS[last], kwargs)
        for arg, value in kwargs.items():
            if arg.endswith("_initializer"):
                self._keyword("initializers", normalize_initializer, arg, value)
            elif arg == "activation":
                self._keyword("activations", normalize_activation, arg, value)
            elif arg.endswith("_regularizer") and value is not None:
                kind = _name_of(value, lambda s: s.lower() if s.lower() in ("l1", "l2", "l1_l2", "l1l2") else None)
                if isinstance(value, ast.Call):
                    kind = REGULARIZER_CALLS.get(_dotted(value.func).rsplit(".", 1)[-1], kind)
                self.facts["regularization"].append(self.fact(value, kind=kind or "regularizer", arg=arg, source=self.seg(value)))

    def _keyword(self, kind: str, normalize: Any, arg: str, value: ast.AST) -> None:
        if isinstance(value, ast.Call):
            return  # the class call itself is recorded when visited
        name = _name_of(value, normalize)
        if name:
            self.facts[kind].append(self.fact(value, name=name, source=self.seg(value), arg=arg))
        elif isinstance(value, (ast.Name, ast.Subscript)):
            self.from_variable(kind, value, arg)

    def _regularizer(self, node: ast.Call, kind: str, kwargs: dict[str, ast.AST]) -> None:
        if kind in ("l1", "l2", "l1_l2"):
            return  # recorded through the *_regularizer keyword, where it is used
        extra = {}
        if kind == "Dropout":
            extra["rate"] = self.seg(kwargs.get("rate") or (node.args[0] if node.args else None))
        if kind == "EarlyStopping":
            extra["monitor"] = _const_str(kwargs.get("monitor")) or "val_loss"
            extra["restore_best_weights"] = self.seg(kwargs.get("restore_best_weights"))
        self.facts["regularization"].append(self.fact(node, kind=kind, source=self.seg(node), arg=None, **extra))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _name_of(node: ast.AST | None, normalize: Any) -> str | None:
    """Normalised name of a string constant, dotted attribute (tf.nn.relu) or class call."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return normalize(node.value)
    if isinstance(node, (ast.Attribute, ast.Name, ast.Call)):
        dotted = _dotted(node)
        return normalize(dotted.rsplit(".", 1)[-1]) if dotted else None
    return None


def _const_float(node: ast.AST | None) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _const_int(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _const_int(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
