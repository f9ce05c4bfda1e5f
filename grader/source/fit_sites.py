"""Which Keras fit calls of a hand-in MUST have run, read from the source with `ast`.

The trusted half of the "hidden fit" defence: a student can undo the probe inside the kernel
(put the real `keras.Model.fit` back and train a model the grader never sees), but cannot hide the
call from the source. `expected_fits()` lists the fit call sites that certainly executed -- given
which cells ran to the end -- and where the probe would have recorded them: the cell and the line
of the running cell's statement (the probe records the outermost cell frame's line, so a fit
inside a helper is recorded at the line that calls the helper, with the helper's name).

"Certainly executed" is deliberately narrow, because a false alarm accuses an honest student:
module-level statements of a cell that ran without error; bodies of `with`, of `for` loops over a
literal that is not empty (or a name bound to one), of `if True` / `if __name__ == "__main__"`,
and of `try` blocks without `except`; functions (not generators, not async) called by name from
such a place, when the name is certainly bound to that `def` at the call. Anything after a
`return`, `raise`, `break` or `continue` that may leave the block is not certain; neither are
comprehensions, lambdas, conditional expressions and the right side of `and` / `or`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from grader.load import Submission
from grader.source.parsed import parse_cell
from grader.source.train_steps import method_call

# Keywords only Keras' fit takes: a `.fit(` with one of them (or on a compiled object) is training,
# not scikit-learn's `scaler.fit(x)` or ImageDataGenerator's `datagen.fit(x)`.
KERAS_FIT_KWARGS = frozenset({"epochs", "nb_epoch", "validation_split", "validation_data", "callbacks",
                              "batch_size", "steps_per_epoch", "validation_steps", "initial_epoch",
                              "validation_freq", "class_weight"})
_MAX_DEPTH = 3  # helper calling helper calling fit
# Resolves a global name as it is bound before a given line of the code being walked.
Lookup = Callable[[str, int], "ast.AST | None"]
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class ExpectedFit:
    """Fit call site(s) the probe must have recorded at least `count` times at this place."""

    cell: int  # the running cell, where the probe records the fit
    first_line: int  # range of lines of the recorded location (the call statement)
    last_line: int
    function: str | None  # the helper holding the fit; None for a fit at module level
    sites: list[dict[str, Any]] = field(default_factory=list)  # static fit facts (cell/line of the call)

    @property
    def count(self) -> int:
        return len(self.sites)


@dataclass
class _Binding:
    cell: int
    line: int
    node: ast.AST | None  # the def, or the assigned value (single name target); None otherwise
    certain: bool  # the binding statement certainly ran


class _Program:
    """The parsed cells of a hand-in and where each global name is bound."""

    def __init__(self, sub: Submission, completed: set[int]):
        self.completed = completed
        self.trees: dict[int, ast.Module] = {}
        # A `%%time` cell is run as one `run_cell_magic(...)` call on line 1: every fit in it is
        # recorded at line 1 (the outermost frame of the cell).
        self.magic_cells: set[int] = set()
        for cell in sub.code_cells:
            parsed = parse_cell(cell.source)
            if parsed.tree is None:
                continue
            self.trees[cell.index] = parsed.tree
            magics = parsed.magics
            if magics and magics[0][0] == 1 and magics[0][1].startswith("%%"):
                self.magic_cells.add(cell.index)
        self.bindings: dict[str, list[_Binding]] = {}
        for index, tree in self.trees.items():
            certain = {id(s) for s in reached_statements(tree.body)} if index in completed else set()
            for stmt in _module_statements(tree.body):
                for name, node in _bound_names(stmt):
                    self.bindings.setdefault(name, []).append(_Binding(index, stmt.lineno, node,
                                                                       id(stmt) in certain))

    def binding(self, name: str, cell: int, line: int) -> ast.AST | None:
        """The def or value `name` certainly holds at (cell, line), or None when not certain."""
        before = [b for b in self.bindings.get(name, []) if (b.cell, b.line) < (cell, line)]
        if not before:
            return None
        last = max(before, key=lambda b: (b.cell, b.line))
        return last.node if last.certain else None


def expected_fits(sub: Submission, completed: set[int], static: dict[str, Any]) -> list[ExpectedFit]:
    """Every place where the probe must have recorded a fit, given the cells that ran to the end."""
    program = _Program(sub, completed)
    facts = {(f.get("cell"), f.get("line")): f for f in static.get("fits", []) if isinstance(f, dict)}
    keras_targets = {f.get("target") for kind in ("compiles", "models") for f in static.get(kind, [])} - {None}

    def fit_fact(cell: int, call: ast.Call) -> dict[str, Any] | None:
        fact = facts.get((cell, call.lineno))
        if fact is None or method_call(call)[0] not in ("fit", "fit_generator"):
            return None
        keras = set(fact.get("kwargs") or {}) & KERAS_FIT_KWARGS or fact.get("target") in keras_targets
        return fact if keras else None

    def helper_sites(node: ast.AST, cell: int, at: tuple[int, int], depth: int, seen: set[int]) -> list[dict]:
        """Fit facts certainly reached when the helper `node` (a def in `cell`) is called at `at`."""
        if not isinstance(node, ast.FunctionDef) or depth > _MAX_DEPTH or id(node) in seen:
            return []
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _walk_scope(node)):
            return []  # a generator's body does not run when it is called
        local = _local_names(node)
        sites: list[dict] = []

        def lookup(name: str, line: int) -> ast.AST | None:  # globals as they are at the call
            return None if name in local else program.binding(name, *at)

        for call in reached_calls(node.body, lookup):
            if fact := fit_fact(cell, call):
                sites.append(fact)
            elif isinstance(call.func, ast.Name) and call.func.id not in local:
                target = program.binding(call.func.id, *at)
                def_cell = _cell_of(program, target)
                if def_cell is not None:
                    sites += helper_sites(target, def_cell, at, depth + 1, seen | {id(node)})
        return sites

    expected: list[ExpectedFit] = []
    for cell in sorted(completed & set(program.trees)):
        def lookup(name: str, line: int, cell: int = cell) -> ast.AST | None:
            return program.binding(name, cell, line)

        for call in reached_calls(program.trees[cell].body, lookup):
            first = 1 if cell in program.magic_cells else call.lineno
            last = call.end_lineno or call.lineno
            if fact := fit_fact(cell, call):
                expected.append(ExpectedFit(cell, first, last, None, [fact]))
            elif isinstance(call.func, ast.Name):
                target = program.binding(call.func.id, cell, call.lineno)
                def_cell = _cell_of(program, target)
                if def_cell is None:
                    continue
                sites = helper_sites(target, def_cell, (cell, call.lineno), 1, set())  # type: ignore[arg-type]
                if sites:
                    expected.append(ExpectedFit(cell, first, last, call.func.id, sites))
    return expected


def reached_statements(body: list[ast.stmt], lookup: Lookup | None = None) -> Iterator[ast.stmt]:
    """Statements of `body` that certainly run when the block runs to its end (see module doc)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.With, ast.AsyncWith)) or (isinstance(stmt, ast.For) and _non_empty(stmt.iter, lookup, stmt.lineno)) or (isinstance(stmt, ast.If) and _always_true(stmt.test)):
            yield from reached_statements(stmt.body, lookup)
        elif isinstance(stmt, ast.Try) and not stmt.handlers:
            yield from reached_statements(stmt.body + stmt.finalbody, lookup)
        if _may_leave(stmt):
            return


def reached_calls(body: list[ast.stmt], lookup: Lookup | None = None) -> Iterator[ast.Call]:
    """Calls that certainly run when the block runs to its end, in source order."""
    for stmt in reached_statements(body, lookup):
        for part in _evaluated_parts(stmt):
            yield from _certain_calls(part)


# ------------------------------------------------------------------------------------------ helpers


def _cell_of(program: _Program, node: ast.AST | None) -> int | None:
    if not isinstance(node, ast.FunctionDef):
        return None
    for index, tree in program.trees.items():
        if any(stmt is node for stmt in tree.body):
            return index if index in program.completed else None
    return None


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement outside function and class bodies."""
    for stmt in body:
        yield stmt
        if not isinstance(stmt, _SCOPES):
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt):
                    yield from _module_statements([child])
                elif isinstance(child, (ast.excepthandler, ast.match_case)):
                    yield from _module_statements(child.body)


def _bound_names(stmt: ast.stmt) -> Iterator[tuple[str, ast.AST | None]]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield stmt.name, (stmt if isinstance(stmt, ast.FunctionDef) else None)
        return
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            yield (alias.asname or alias.name).split(".")[0], None
        return
    single = isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars is not None]
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                yield node.id, (stmt.value if single else None)  # type: ignore[attr-defined]
    for node in _walk_expressions(stmt):  # walrus: (x := ...)
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            yield node.target.id, None


def _walk_expressions(stmt: ast.stmt) -> Iterator[ast.AST]:
    for part in _evaluated_parts(stmt):
        yield from ast.walk(part)


def _evaluated_parts(stmt: ast.stmt) -> list[ast.AST]:
    """The expressions a statement itself evaluates (not its nested blocks)."""
    if isinstance(stmt, _SCOPES):
        return []  # decorators and defaults: never where a fit hides in real hand-ins
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in stmt.items]
    if isinstance(stmt, (ast.If, ast.While)):
        return [stmt.test]
    if isinstance(stmt, ast.Match):
        return [stmt.subject]
    if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
        return []
    return [stmt]


def _certain_calls(node: ast.AST) -> Iterator[ast.Call]:
    """Calls inside an expression that run whenever it is evaluated (arguments before the call)."""
    if isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
        return
    if isinstance(node, ast.IfExp):
        yield from _certain_calls(node.test)
        return
    if isinstance(node, ast.BoolOp):
        yield from _certain_calls(node.values[0])
        return
    for child in ast.iter_child_nodes(node):
        yield from _certain_calls(child)
    if isinstance(node, ast.Call):
        yield node


def _may_leave(stmt: ast.stmt) -> bool:
    """The statement may end its block early (return/raise/break/continue somewhere inside)."""
    leaving = (ast.Return, ast.Raise, ast.Break, ast.Continue)
    if isinstance(stmt, _SCOPES):
        return False  # a def only binds a name
    return isinstance(stmt, leaving) or any(isinstance(n, leaving) for n in _walk_scope(stmt))


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk without entering nested functions, classes and lambdas."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, _SCOPES):
            yield child
            yield from _walk_scope(child)


def _local_names(fn: ast.FunctionDef) -> set[str]:
    args = fn.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for node in _walk_scope(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _non_empty(node: ast.AST, lookup: Lookup | None, line: int, depth: int = 0) -> bool:
    """The loop iterable (of a loop at `line`) certainly yields at least one item."""
    if depth > 3:
        return False
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return any(not isinstance(e, ast.Starred) for e in node.elts)
    if isinstance(node, ast.Dict):
        return any(k is not None for k in node.keys)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes)) and len(node.value) > 0
    if isinstance(node, ast.Name):
        value = lookup(node.id, line) if lookup else None
        return value is not None and not isinstance(value, ast.FunctionDef) and _non_empty(value, None, line, depth + 1)
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "range":
            bounds = [_const_int(a) for a in node.args]
            if None in bounds or not 1 <= len(bounds) <= 3 or (len(bounds) == 3 and bounds[2] == 0):
                return False
            return len(range(*bounds)) > 0  # type: ignore[arg-type]
        if isinstance(func, ast.Name) and func.id in ("enumerate", "zip", "reversed", "sorted", "list", "tuple"):
            return bool(node.args) and all(_non_empty(a, lookup, line, depth + 1) for a in node.args)
        if isinstance(func, ast.Attribute) and func.attr in ("items", "keys", "values") and not node.args:
            return _non_empty(func.value, lookup, line, depth + 1)
    return False


def _always_true(test: ast.AST) -> bool:
    if isinstance(test, ast.Constant):
        return bool(test.value) and not isinstance(test.value, (str, bytes))
    # `if __name__ == "__main__":` runs in the kernel (scripts handed in as .py files)
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def _const_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _const_int(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None
