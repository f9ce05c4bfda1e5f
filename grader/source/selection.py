"""Models chosen or ranked by their test results, found in the source.

The statement calls choosing the best model by its test result cheating. This follows test metrics
through the code: values computed by `evaluate(x_test, ...)`, by a metric over test labels
(`accuracy_score(y_test, ...)`, `(pred == y_test).mean()`), by functions that return such a value, and
the containers and dict keys they are stored in. A selection is a `max`/`min`/`sorted`/`.sort`/
`argmax`/`argmin`/`nlargest` over those values, or an `if` comparing them that then assigns
something (`if acc > best: best_model = m`). Printing a test accuracy is not a selection, and
`argmax(predictions, axis=1)` decodes classes, it does not choose a model.

Names flow across cells in notebook order, the way the kernel sees them.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from grader.load import Submission
from grader.source.parsed import parse_cell

_PASSES = 3  # taint reaches a fixed point in a few passes (helpers defined after their use)
_CHOOSERS = {"max", "min", "sorted", "argmax", "argmin", "nlargest", "nsmallest", "idxmax", "idxmin",
             "sort_values", "sort"}
_METRIC_CALLS = {"accuracy_score", "f1_score", "precision_score", "recall_score", "log_loss", "balanced_accuracy_score"}
_STORE_METHODS = {"append", "extend", "insert", "update", "setdefault", "add"}
_TESTISH = re.compile(r"test", re.IGNORECASE)


def find_selections(sub: Submission) -> list[dict[str, Any]]:
    """Lines that choose or rank models by test metrics: [{cell, line, end_line, text, how}]."""
    trees = []
    for cell in sub.code_cells:
        parsed = parse_cell(cell.source)  # parsed once for every reader; huge cells are not parsed
        if parsed.tree is not None:
            trees.append((cell.index, parsed.source, parsed.tree))
    flow = _Flow()
    try:
        for _ in range(_PASSES):
            for _cell, _src, tree in trees:
                flow.visit(tree)
        found = []
        for cell, source, tree in trees:
            lines = source.splitlines()
            for node, how in flow.selections(tree):
                text = lines[node.lineno - 1].strip() if 0 < node.lineno <= len(lines) else ""
                found.append({"cell": cell, "line": node.lineno, "end_line": getattr(node, "end_lineno", node.lineno),
                              "text": text[:200], "how": how})
    except RecursionError:
        return []
    return found


class _Flow(ast.NodeVisitor):
    """Names, dict keys and functions that carry test metrics."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.keys: set[str] = set()
        self.functions: set[str] = set()
        self._function: list[str] = []

    # ------------------------------------------------------------ what carries a test metric
    def tainted(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.names:
                return True
            if isinstance(sub, ast.Subscript) and _const_str(sub.slice) in self.keys:
                return True
            if isinstance(sub, ast.Call) and self._metric_call(sub):
                return True
            if isinstance(sub, ast.Compare) and any(_mentions_test(o) for o in [sub.left, *sub.comparators]) \
                    and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in sub.ops):
                return True  # (pred == y_test).mean(): an accuracy on test
        return False

    def _metric_call(self, call: ast.Call) -> bool:
        name = _callee(call)
        if name == "evaluate" or name in _METRIC_CALLS:
            return any(_mentions_test(a) for a in [*call.args, *(k.value for k in call.keywords)])
        return name in self.functions

    def _mark(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.names.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._mark(elt)
        elif isinstance(target, ast.Starred):
            self._mark(target.value)
        elif isinstance(target, ast.Subscript):
            if (key := _const_str(target.slice)) is not None:
                self.keys.add(key)
            self._mark(target.value)
        elif isinstance(target, ast.Attribute):
            self._mark(target.value)

    def _mark_keys(self, value: ast.AST) -> None:
        """Keys of dict literals whose value is a test metric: {'test_acc': acc}."""
        for sub in ast.walk(value):
            if isinstance(sub, ast.Dict):
                for k, v in zip(sub.keys, sub.values):
                    if (key := _const_str(k)) is not None and self.tainted(v):
                        self.keys.add(key)
            elif isinstance(sub, ast.Call) and _callee(sub) == "dict":
                self.keys.update(k.arg for k in sub.keywords if k.arg and self.tainted(k.value))

    # ------------------------------------------------------------ statements that move it
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function.append(node.name)
        self.generic_visit(node)
        self._function.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Return(self, node: ast.Return) -> None:
        if self._function and self.tainted(node.value):
            self.functions.add(self._function[-1])
            self._mark_keys(node.value)  # type: ignore[arg-type]

    def visit_Assign(self, node: ast.Assign) -> None:
        if self.tainted(node.value):
            self._mark_keys(node.value)
            for target in node.targets:
                self._mark(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.tainted(node.value):
            self._mark(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None and self.tainted(node.value):
            self._mark(node.target)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if self.tainted(node.iter):
            self._mark(node.target)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _STORE_METHODS:
            values = [*node.args, *(k.value for k in node.keywords)]
            if any(self.tainted(v) for v in values):
                for v in values:
                    self._mark_keys(v)
                self._mark(func.value)
        self.generic_visit(node)

    # ------------------------------------------------------------ where it decides
    def selections(self, tree: ast.AST) -> list[tuple[ast.AST, str]]:
        out: list[tuple[ast.AST, str]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and self._chooses(node):
                out.append((node, _callee(node)))
            elif isinstance(node, ast.If) and self._compares(node.test) and _assigns(node.body):
                out.append((node, "if"))
        return sorted(out, key=lambda item: item[0].lineno)

    def _chooses(self, call: ast.Call) -> bool:
        name = _callee(call)
        if name not in _CHOOSERS:
            return False
        if name in ("argmax", "argmin") and any(k.arg == "axis" for k in call.keywords):
            return False  # argmax(predictions, axis=1): class labels, not a choice of model
        if name == "sort" and isinstance(call.func, ast.Attribute):
            return self.tainted(call.func.value) and bool(call.keywords)
        return any(self.tainted(v) for v in [*call.args, *(k.value for k in call.keywords)]) or (
            isinstance(call.func, ast.Attribute) and name in ("sort_values", "idxmax", "idxmin")
            and self.tainted(call.func.value))

    def _compares(self, test: ast.AST) -> bool:
        return any(isinstance(n, ast.Compare) and any(isinstance(op, (ast.Gt, ast.GtE, ast.Lt, ast.LtE)) for op in n.ops)
                   and self.tainted(n) for n in ast.walk(test))


def _assigns(body: list[ast.stmt]) -> bool:
    return any(isinstance(n, (ast.Assign, ast.AnnAssign)) for stmt in body for n in ast.walk(stmt))


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _mentions_test(node: ast.AST) -> bool:
    """An argument naming the test split: x_test, test_images, (X_te... no), data['test']."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and _TESTISH.search(sub.id):
            return True
        if isinstance(sub, ast.Attribute) and _TESTISH.search(sub.attr):
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _TESTISH.search(sub.value):
            return True
    return False
