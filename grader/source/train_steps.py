"""Training that does not go through `fit`, read from the source: `train_on_batch` / `test_on_batch`
loops and `tf.GradientTape` loops that call `optimizer.apply_gradients` (or `minimize`).

Legitimate Keras, so never suspicious by itself: what matters is which data it trains on. Each fact
(in `Trace.static["train_steps"]`) says, as source text, what the protocol rules need to judge the
training like an open `fit`: the batch it trains on (`x`), what the enclosing loops iterate over
(`data`, with a name resolved to the value it was last assigned in the hand-in), and what is
measured inside the same loop with `test_on_batch` / `evaluate` (`validation`).

Fact: {cell, line, end_line, function?, kind: train_on_batch|test_on_batch|apply_gradients|minimize,
target, x, data, validation}. `x` of apply_gradients/minimize is the arguments of the calls inside
the `with GradientTape()` blocks of the same function or cell (the forward pass: `model(xb)`, the
loss on `yb`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

STEP_METHODS = ("train_on_batch", "test_on_batch", "apply_gradients", "minimize")
_MAX_TEXT = 300  # per text field: enough to show where the data comes from
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

Seg = Callable[[ast.AST | None], "str | None"]
# Classes whose methods called through the class take the model first: `keras.Model.fit(model, x, ...)`,
# `type(model).__bases__[0].fit(model, ...)`, `model.__class__.__mro__[1].train_on_batch(model, ...)`.
_MODEL_CLASSES = {"Model", "Sequential", "Functional", "Trainer", "TensorFlowTrainer"}
_CLASS_HINTS = ("__bases__", "__mro__", "__class__", "mro()", "__base__", "type(")


def record_assignments(tree: ast.AST, seg: Seg, assigned: dict[str, str]) -> None:
    """Remember `name = value` (last one wins), so that `for xb, yb in ds:` can say what `ds` is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = seg(node.value)
            if text:
                assigned[node.targets[0].id] = text[:_MAX_TEXT]


def cell_steps(cell: int, tree: ast.Module, seg: Seg, assigned: dict[str, str]) -> list[dict[str, Any]]:
    """The train-step facts of one parsed cell (see the module doc)."""
    walker = _Walker(cell, seg, assigned)
    walker.walk(tree.body, loops=[], function=None)
    for fact in walker.steps:
        if fact["kind"] in ("apply_gradients", "minimize"):
            tapes = [t for t in walker.tapes if t[0] == fact.get("function")]
            fact["x"] = _join(text for _, text in tapes) or None
        fact["validation"] = _join(walker.measured_in(fact.pop("_loop"))) or None
    return walker.steps


class _Walker:
    def __init__(self, cell: int, seg: Seg, assigned: dict[str, str]):
        self.cell, self.seg, self.assigned = cell, seg, assigned
        self.steps: list[dict[str, Any]] = []
        self.tapes: list[tuple[str | None, str]] = []  # (function, call arguments inside the tape block)
        self.measures: list[tuple[int, str]] = []  # (line, x of test_on_batch / evaluate)

    def walk(self, body: list[ast.stmt], loops: list[ast.AST], function: str | None) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.walk(stmt.body, [], stmt.name)  # a helper's own loops only
                continue
            if isinstance(stmt, ast.ClassDef):
                for item in stmt.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.walk(item.body, [], item.name)
                continue
            inner = [*loops, stmt] if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)) else loops
            if isinstance(stmt, (ast.With, ast.AsyncWith)) and any(_is_tape(i.context_expr) for i in stmt.items):
                args = [self.seg(a) or "" for n in _walk_scope(stmt) if isinstance(n, ast.Call)
                        for a in [*n.args, *(k.value for k in n.keywords)] if not isinstance(a, ast.Constant)]
                self.tapes.append((function, _join(args)))
            for node in _own_expressions(stmt):
                if isinstance(node, ast.Call):
                    self._call(node, stmt, loops, function)
            for child in _child_blocks(stmt):
                self.walk(child, inner, function)

    def _call(self, node: ast.Call, stmt: ast.stmt, loops: list[ast.AST], function: str | None) -> None:
        method, target, args = method_call(node)
        if args and class_like(target, self.seg(target)):
            target, args = args[0], args[1:]  # through the class: the model comes first
        first = self.seg(args[0]) or "" if args else ""
        data_like = bool(args) and isinstance(args[0], (ast.Name, ast.Subscript, ast.Attribute))
        if (method in ("test_on_batch", "evaluate") and args) or (data_like and "val" in first.lower()):
            self.measures.append((node.lineno, first))  # what the loop measures: x_val, x_test ...
        if method not in STEP_METHODS:
            return
        if method == "minimize" and not {k.arg for k in node.keywords} & {"var_list", "tape"}:
            return  # scipy.optimize.minimize(f, x0) is no training step: tf's takes var_list / tape
        x = next((k.value for k in node.keywords if k.arg == "x"), args[0] if args else None)
        x_text = (self.seg(x) or "") if x is not None else ""
        root = _root_name(x) if x is not None else None
        if root is not None and root in self.assigned:  # x_all[i:i+32] <- np.concatenate([x_train, x_test])
            x_text += f" <- {self.assigned[root]}"
        fact: dict[str, Any] = {"cell": self.cell, "line": node.lineno, "end_line": node.end_lineno or node.lineno}
        if function is not None:
            fact["function"] = function
        fact.update(kind=method, target=self.seg(target) if target is not None else None,
                    x=x_text[:_MAX_TEXT] if method in ("train_on_batch", "test_on_batch") and x_text else None,
                    data=_join(self._iterated(loop) for loop in loops) or None,
                    _loop=(loops[0].lineno, loops[0].end_lineno) if loops else None)
        self.steps.append(fact)

    def _iterated(self, loop: ast.AST) -> str:
        if not isinstance(loop, (ast.For, ast.AsyncFor)):
            return ""
        text = self.seg(loop.iter) or ""
        root = _root_name(loop.iter)
        if root is not None and root in self.assigned:
            text += f" <- {self.assigned[root]}"
        return text

    def measured_in(self, loop: tuple[int, int | None] | None) -> list[str]:
        if loop is None:
            return []
        first, last = loop
        return [x for line, x in self.measures if first <= line <= (last or first)]


def method_call(node: ast.Call) -> tuple[str | None, ast.AST | None, list[ast.AST]]:
    """(method, object, positional args) of `obj.method(...)`, `obj.method.__wrapped__(...)` and
    `getattr(obj, 'method')(...)`."""
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "__wrapped__" and isinstance(func.value, ast.Attribute):
        func = func.value  # keras.Model.fit.__wrapped__(model, ...): the real fit behind the probe's wrapper
    if isinstance(func, ast.Attribute):
        return func.attr, func.value, list(node.args)
    if (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"
            and len(func.args) >= 2 and isinstance(func.args[1], ast.Constant) and isinstance(func.args[1].value, str)):
        return func.args[1].value, func.args[0], list(node.args)
    return None, None, list(node.args)


def class_like(obj: ast.AST | None, text: str | None) -> bool:
    """The object whose method is called is a class, not a model (see _MODEL_CLASSES)."""
    if obj is None or (isinstance(obj, ast.Call) and _dotted(obj.func) == "super"):
        return False  # super().fit(x, ...) and super(Cls, model).fit(x, ...) are bound
    last = _dotted(obj).rsplit(".", 1)[-1]
    return last in _MODEL_CLASSES or any(h in (text or "") for h in _CLASS_HINTS)


def _is_tape(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Call) and _dotted(expr.func).rsplit(".", 1)[-1] == "GradientTape"


def _own_expressions(stmt: ast.stmt) -> list[ast.AST]:
    """The nodes of a statement outside its nested blocks and nested scopes."""
    blocks = {id(s) for child in _child_blocks(stmt) for s in child}
    out: list[ast.AST] = []
    todo = [c for c in ast.iter_child_nodes(stmt) if id(c) not in blocks]
    while todo:
        node = todo.pop()
        if isinstance(node, (*_SCOPES, ast.stmt)):
            continue
        out.append(node)
        todo += ast.iter_child_nodes(node)
    return sorted(out, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))


def _child_blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    blocks = [getattr(stmt, name) for name in ("body", "orelse", "finalbody") if isinstance(getattr(stmt, name, None), list)]
    blocks += [h.body for h in getattr(stmt, "handlers", [])]
    blocks += [c.body for c in getattr(stmt, "cases", [])]
    return blocks


def _walk_scope(node: ast.AST) -> list[ast.AST]:
    out, todo = [], list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        if not isinstance(child, _SCOPES):
            out.append(child)
            todo += ast.iter_child_nodes(child)
    return out


def _root_name(node: ast.AST) -> str | None:
    """`ds` of `ds`, `ds.batch(32)`, `ds.shuffle(100).batch(32)`, `zip(ds, ...)` (first argument)."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, (ast.Attribute, ast.Subscript)):  # ds.batch, x_todo[i:i+32]
            node = node.value
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.args:  # zip(xs, ys), enumerate(ds)
                node = node.args[0]
            else:
                node = node.func
        else:
            return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _join(texts: Any) -> str:
    return " ; ".join(t for t in texts if t)[:_MAX_TEXT]
