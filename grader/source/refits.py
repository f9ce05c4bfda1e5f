"""Keras fits that train a model object again, read from the source with `ast`.

The classic mistake of this homework: one model, then a loop over optimizers that compiles it again
and calls `fit` again (training goes on from the previous weights), or two cells calling
`model.fit(...)` with no `model = Sequential(...)` between them. `new_model_per_fit` reads these
facts when the notebook's trainings were not recorded (an export that never ran, a failed capture).

A Keras `NAME.fit(...)` (a Keras-only keyword, or NAME compiled / built with Sequential or Model)
repeats an earlier one in notebook order (cells of one file; module level, or a function the hand-in
calls) when nothing between them binds NAME (assignment, for/with target, import, def, class, del) or
uses it other than to build, compile, fit, evaluate, predict, save or print it (`set_weights`, a helper
receiving it, `model.layers` may reset the weights); or when it is certainly reached on every turn
(grader.source.fit_sites' rules) of a `for`/`while` that may turn twice and never binds or uses NAME.

Deliberately narrow, because a false alarm accuses an honest student: plain variables only (not
`self.model`, `modelos[i]`, `crear_modelo().fit`); what a branch that may not run changes is forgotten
after it (an if/else with a fit in each counts once); try, match, comprehensions, lambdas, generators,
methods and helpers receiving the model are not followed. A name that escapes (stored, passed,
aliased: a reset through the alias is invisible) stays untracked until bound to a new call's result;
names declared global/nonlocal or used by any function body other than to compile/fit them are never
judged, nor hand-ins calling exec/eval/globals(); a cell that does not parse or holds a magic that
may run code (`%run`, `%time x = ...`) ends every chain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from grader.load import Submission
from grader.source.fit_sites import KERAS_FIT_KWARGS, reached_calls
from grader.source.parsed import parse_cell

_FITS = ("fit", "fit_generator")
# Methods that neither replace nor reset the weights (compiling again keeps them: the classic mistake).
_KEEPS_WEIGHTS = frozenset({*_FITS, "compile", "add", "pop", "build", "summary", "evaluate", "predict",
                            "evaluate_generator", "predict_generator", "predict_classes", "predict_on_batch",
                            "get_weights", "count_params", "get_config", "to_json", "save", "save_weights"})
_LOOKS = frozenset({"print", "display", "len", "type", "id", "str", "repr"})  # calls that keep no reference
_DYNAMIC = frozenset({"exec", "eval", "globals", "vars", "locals", "get_ipython"})  # may bind any name
_HARMLESS_MAGICS = frozenset({"%matplotlib", "%pip", "%conda", "%load_ext", "%reload_ext", "%autoreload",
                              "%config", "%env", "%precision", "%%time", "%%capture"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LEAVES = (ast.Return, ast.Raise, ast.Break, ast.Continue)
_SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete, ast.Import, ast.ImportFrom, ast.Pass,
           ast.Global, ast.Nonlocal, *_LEAVES)


@dataclass(frozen=True)
class FitSite:
    """A fit call: its cell (0-based index into Submission.cells) and lines (1-based in the cell)."""

    cell: int
    line: int
    end_line: int


@dataclass(frozen=True)
class RepeatedFit:
    """A Keras `NAME.fit(...)` on the model object that an earlier fit already trained."""

    name: str  # the variable holding the model
    fit: FitSite  # the repeated fit
    earlier: FitSite  # the fit that trained the same object before (the same call when in_loop)
    in_loop: bool  # the loop around the fit runs it again on the same object


# Variable -> the last fit on the object it holds; None: it escaped (untracked until bound to a new
# call's result); absent: no fit known since it was bound.
State = dict[str, "FitSite | None"]


def repeated_fits(sub: Submission) -> list[RepeatedFit]:
    """Every repeated Keras fit of the hand-in, in notebook order (see the module doc)."""
    cells: list[tuple[int, str, ast.Module | None, bool]] = []  # index, file, tree, judged
    for cell in sub.code_cells:
        parsed = parse_cell(cell.source)
        if parsed.source is None and not parsed.too_large:
            continue  # %%bash, %%html...: no Python of the kernel runs
        judged = parsed.tree is not None and all(_harmless(text) for _, text in parsed.magics)
        cells.append((cell.index, cell.origin.file, parsed.tree, judged))
    nodes = [n for _, _, tree, _ in cells if tree is not None for n in ast.walk(tree)]
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _DYNAMIC for n in nodes):
        return []
    finder = _Finder(nodes)
    state: State = {}
    file = None
    for index, name, tree, judged in cells:
        if name != file:
            state, file = {}, name  # another script of a multi-file hand-in
        after = None
        if judged and tree is not None:
            try:
                after = finder.block(tree.body, state, index)
            except RecursionError:  # absurdly nested code: judge nothing in it
                pass
        if after is None:  # not judged, or stopped half-way: what the cell may touch is unknown
            touched = _touched_in(tree.body) | _receivers(tree.body) if tree is not None else set()
            after = dict.fromkeys(set(state) | touched)
        state = after
    return sorted(finder.found.values(), key=lambda r: (r.fit.cell, r.fit.line))


class _Finder:
    def __init__(self, nodes: list[ast.AST]):
        self.found: dict[tuple[int, int], RepeatedFit] = {}
        self.called = {n.func.id for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        self.keras: set[str] = set()  # compiled, or built with Sequential / Model
        self.single: set[str] = set()  # bound somewhere to a literal of at most one item
        self.untracked: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "compile" \
                    and isinstance(node.func.value, ast.Name):
                self.keras.add(node.func.value.id)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                func = node.value.func if isinstance(node.value, ast.Call) else None
                if getattr(func, "attr", getattr(func, "id", None)) in ("Sequential", "Model"):
                    self.keras.add(node.targets[0].id)
                if _at_most_one(node.value, set()):
                    self.single.add(node.targets[0].id)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                self.untracked.update(node.names)
            elif isinstance(node, _SCOPES):  # what a body may do to outer names when it is called
                own = list(_walk_own(node))
                self.untracked |= _uses(own) - _binds(own) - {a.arg for a in own if isinstance(a, ast.arg)}

    def block(self, body: list[ast.stmt], state: State, cell: int) -> State | None:
        """Walk a block from `state`: the state at its end, None when it never gets there."""
        for stmt in body:
            if (after := self.statement(stmt, dict(state), cell)) is None:
                return None
            state = after
        return state

    def statement(self, stmt: ast.stmt, state: State, cell: int) -> State | None:
        if isinstance(stmt, ast.FunctionDef):
            if stmt.name in self.called and not any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _walk_own(stmt)):
                self.block(stmt.body, {}, cell)  # a call starts from its own locals
            return _forget(state, {stmt.name})
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            return dict.fromkeys(state)
        if isinstance(stmt, ast.If):
            state = _forget(state, _touched(stmt.test))
            return _merge([self.block(stmt.body, state, cell), self.block(stmt.orelse, state, cell)])
        if isinstance(stmt, (ast.For, ast.While)):
            return self.loop(stmt, state, cell)
        if isinstance(stmt, ast.With):
            return self.block(stmt.body, _forget(state, _touched_in(stmt.items)), cell)
        if not isinstance(stmt, _SIMPLE):  # try, match, class, async: not followed, only forgotten
            return _forget(state, _touched(stmt) | _receivers([stmt]))
        uses, binds = _uses(_walk_own(stmt)), _binds(_walk_own(stmt))
        state = _forget(state, uses)  # an argument may reset the model before the fit runs
        for call in reached_calls([stmt]):
            name = self.receiver(call)
            if name is None or (name in state and state[name] is None):
                continue  # not a Keras fit on a variable, or the variable escaped
            site = FitSite(cell, call.lineno, call.end_lineno or call.lineno)
            if (earlier := state.get(name)) is not None:
                self.found.setdefault((cell, site.line), RepeatedFit(name, site, earlier, False))
            state[name] = site
        # `NAME = call(...)`: NAME holds a new object that no other name refers to.
        fresh = {stmt.targets[0].id} if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
            stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Call)) else set()
        state = _forget(state, uses | (binds - fresh))
        for name in fresh:
            state.pop(name, None)
        return None if isinstance(stmt, _LEAVES) else state

    def loop(self, loop: ast.For | ast.While, state: State, cell: int) -> State | None:
        header = _touched(loop.test if isinstance(loop, ast.While) else loop.iter)
        target = _touched(loop.target) if isinstance(loop, ast.For) else set()
        state = _forget(state, header)
        # What any turn may change; a `while` test runs on every turn.
        touched = _touched_in(loop.body) | target | (header if isinstance(loop, ast.While) else set())
        self.block(loop.body, _forget(state, target), cell)  # the first turn
        once = any(isinstance(s, (ast.Return, ast.Raise, ast.Break)) for s in loop.body) or (
            isinstance(loop, ast.For) and _at_most_one(loop.iter, self.single))
        for call in [] if once else reached_calls(loop.body):
            name = self.receiver(call)
            if name is not None and name not in touched:
                site = FitSite(cell, call.lineno, call.end_lineno or call.lineno)
                self.found.setdefault((cell, site.line), RepeatedFit(name, site, site, True))
        after = _forget(state, touched)
        for name in _receivers(loop.body) - touched:
            after.pop(name, None)  # fitted on some turn, or on none
        return self.block(loop.orelse, after, cell)

    def receiver(self, call: ast.Call) -> str | None:
        """NAME of a Keras `NAME.fit(...)` whose NAME the walk may follow, else None."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in _FITS and isinstance(func.value, ast.Name)):
            return None
        name = func.value.id
        keras = bool({k.arg for k in call.keywords} & KERAS_FIT_KWARGS) or name in self.keras
        return name if keras and name not in self.untracked else None


def _harmless(magic: str) -> bool:
    text = magic.strip()
    return text.startswith("!") or text.endswith("?") or (text.split() or [""])[0] in _HARMLESS_MAGICS


def _walk_own(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under `node`, not entering nested functions, classes and lambdas (but naming them)."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        child = todo.pop()
        yield child
        if not isinstance(child, _SCOPES):
            todo.extend(ast.iter_child_nodes(child))


def _binds(nodes: Iterable[ast.AST]) -> set[str]:
    out: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, (*_SCOPES[:3], ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping)):
            out.add(getattr(n, "name", None) or getattr(n, "rest", None) or "")
    return out - {""}


def _uses(nodes: Iterable[ast.AST]) -> set[str]:
    """Names read other than as `NAME.compile(...)`, `NAME.fit(...)`, `print(NAME)` and the like."""
    nodes = list(nodes)
    harmless: set[int] = set()
    for n in nodes:
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _KEEPS_WEIGHTS:
            harmless.add(id(n.func.value))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _LOOKS:
            harmless.update(id(a) for a in n.args)
    return {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in harmless}


def _touched(node: ast.AST) -> set[str]:
    """Names `node` binds or uses (see _uses), nested blocks included."""
    nodes = [node, *_walk_own(node)]
    return _uses(nodes) | _binds(nodes)


def _touched_in(nodes: Iterable[ast.AST]) -> set[str]:
    return set().union(*(_touched(n) for n in nodes))


def _receivers(body: list[ast.stmt]) -> set[str]:
    return {n.func.value.id for stmt in body for n in [stmt, *_walk_own(stmt)]
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _FITS
            and isinstance(n.func.value, ast.Name)}


def _forget(state: State, names: set[str]) -> State:
    """The state after `names` escaped or were bound to something unknown."""
    return {**state, **dict.fromkeys(names)}


def _merge(states: list[State | None]) -> State | None:
    """After branches, what every branch that gets there agrees on; a disagreement with an escape escapes."""
    reached = [s for s in states if s is not None]
    if not reached:
        return None
    out: State = {}
    for name in set().union(*reached):
        values = [s.get(name, ...) for s in reached]
        if all(v == values[0] for v in values) and values[0] is not ...:
            out[name] = values[0]  # type: ignore[assignment]
        elif None in values:
            out[name] = None
    return out


def _at_most_one(node: ast.AST, single: set[str]) -> bool:
    """A loop over this turns at most once: a literal of one item, range(1), a name bound to such."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        items = node.keys if isinstance(node, ast.Dict) else node.elts
        return len(items) <= 1 and not any(e is None or isinstance(e, ast.Starred) for e in items)
    if isinstance(node, ast.Name):
        return node.id in single
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args and not node.keywords:
        args = node.args
        if node.func.id == "range" and all(isinstance(a, ast.Constant) and type(a.value) is int for a in args):
            bounds = [a.value for a in args]  # type: ignore[attr-defined]
            return 0 not in bounds[2:] and len(range(*bounds)) <= 1
        if node.func.id in ("enumerate", "zip"):  # for i, opt in enumerate(["adam"])
            return any(_at_most_one(a, single) for a in args)
    return False
