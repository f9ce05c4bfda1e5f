"""Code that has no business in the homework: processes, signals, sockets, the grader's internals.

Static, per cell, with `ast` (nothing runs). An attack the sandbox blocks silently (the student's
code catches its own PermissionError) leaves no trace in the run, so the instructor needs this flag
to review the hand-in by hand. What counts is data (`SuspiciousPatterns`, filled from the rubric's
`suspicious_code.params`), not code.

Every finding is a dict: cell (0-based), line / end_line (1-based in the cell), col, kind (`import`,
`call`, `attribute`, `patch`, `dynamic`, `listing`, `delete`, `string`, `shell`), found (the
offending name, string or command, as the student wrote it, shortened) and pattern (the rubric
entry that matched).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.load import Cell, Submission
from grader.source.parsed import parse_cell

MAX_FOUND_CHARS = 80
MAX_FINDINGS = 200  # a generated cell with 10,000 os.kill calls must not bloat the verdict
_SHELL_CELL_MAGICS = {"bash", "sh", "script", "system"}
_PARENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")


@dataclass(frozen=True)
class SuspiciousPatterns:
    """What to flag; every field is one list (or table) of the rubric's `suspicious_code.params`."""

    modules: tuple[str, ...] = ()  # imported modules (a sub-module counts: http -> http.server)
    calls: tuple[str, ...] = ()  # dotted names used or called, fnmatch patterns ("os.exec*", "sys.modules")
    attributes: tuple[str, ...] = ()  # identifiers anywhere (attribute, name, def, string): __wrapped__
    patched_modules: tuple[str, ...] = ()  # assigning to an attribute of these replaces library code
    dynamic_calls: tuple[str, ...] = ()  # flagged when their first argument is not a literal string
    listing_calls: tuple[str, ...] = ()  # flagged when an argument climbs out of the folder ('..')
    delete_calls: tuple[str, ...] = ()  # flagged unless they delete a plain relative path
    shell_calls: tuple[str, ...] = ()  # Python calls that run a shell command (os.system)
    shell_allowed: tuple[str, ...] = ()  # shell commands a hand-in may run (!pip install ...)
    strings: Mapping[str, str] = field(default_factory=dict)  # description -> regex on string literals

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SuspiciousPatterns:
        lists = {name: tuple(params.get(name, ())) for name in (
            "modules", "calls", "attributes", "patched_modules", "dynamic_calls", "listing_calls", "delete_calls",
            "shell_calls", "shell_allowed")}
        return cls(**lists, strings=dict(params.get("strings", {})))


def find_suspicious(sub: Submission, patterns: SuspiciousPatterns) -> list[dict[str, Any]]:
    """Every finding of every code cell, in cell and line order (imports carry over between cells)."""
    strings = [(label, re.compile(rx)) for label, rx in patterns.strings.items()]
    aliases: dict[str, str] = {}
    findings: list[dict[str, Any]] = []
    for cell in sub.code_cells:
        parsed = parse_cell(cell.source)
        if parsed.too_large:
            continue  # code_parses says it was not analysed
        source, magics, tree = parsed.source, list(parsed.magics), parsed.tree
        findings += _shell_findings(cell, source, magics, patterns, strings)
        if tree is None:
            continue  # code_parses reports it; a cell that is not Python runs nothing
        try:
            found = _CellScan(cell, patterns, strings, aliases).scan(tree)
        except RecursionError:
            continue
        findings += found
        if len(findings) >= MAX_FINDINGS:
            break
    # The same name twice on a line (`os.getppid()` twice) is one finding.
    unique = {(f["cell"], f["line"], f["kind"], f["found"]): f for f in findings[::-1]}
    return sorted(unique.values(), key=lambda f: (f["cell"], f["line"], f["col"]))[:MAX_FINDINGS]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_FOUND_CHARS else text[:MAX_FOUND_CHARS - 1] + "…"


def _shell_findings(cell: Cell, source: str | None, magics: list[tuple[int, str]], patterns: SuspiciousPatterns,
                    strings: list[tuple[str, re.Pattern[str]]]) -> list[dict[str, Any]]:
    """`!cmd` lines, `%system`, and whole `%%bash` cells: commands outside the allowed list, and
    any magic (`%cd ../..`, `%%writefile /root/x`) naming a suspicious path."""
    commands: list[tuple[int, str]] = []
    for line, text in magics:
        if text.startswith("!"):
            commands.append((line, text.lstrip("!")))
        elif re.match(r"%(system|sx)\b", text):
            commands.append((line, text.split(None, 1)[1] if " " in text else ""))
        elif source is None and line == 1 and text[2:].split()[:1] and text[2:].split()[0] in _SHELL_CELL_MAGICS:
            rest = re.split(r"\r\n|\r|\n", cell.source)[1:]
            commands += [(n + 2, t.strip()) for n, t in enumerate(rest) if t.strip() and not t.strip().startswith("#")]
    out = []
    for line, text in commands:
        bad = _disallowed_command(text, patterns.shell_allowed)
        if bad:
            out.append(_finding(cell, line, "shell", text, bad))
    flagged = {f["line"] for f in out}
    for line, text in magics + [c for c in commands if c not in magics]:
        label = _string_label(text, strings)
        if label and line not in flagged:
            flagged.add(line)
            out.append(_finding(cell, line, "string", text, label))
    return out


def _disallowed_command(text: str, allowed: tuple[str, ...]) -> str | None:
    """The first command of a shell line not in `allowed` ('rm' of 'ls; rm -rf ~'), else None."""
    for part in re.split(r"&&|\|\||[;&|]", text):
        words = [w for w in part.split() if not re.fullmatch(r"\w+=\S*", w)]  # FOO=1 cmd
        if words and words[0] == "sudo":
            words = words[1:]
        if words and words[0].rsplit("/", 1)[-1] not in allowed and words[0] not in allowed:
            return words[0]
    return None


def _string_label(text: str, strings: list[tuple[str, re.Pattern[str]]]) -> str | None:
    return next((label for label, rx in strings if rx.search(text)), None)


def _finding(cell: Cell, line: int, kind: str, found: str, pattern: str, end_line: int | None = None,
             col: int = 0) -> dict[str, Any]:
    return {"cell": cell.index, "line": line, "end_line": end_line or line, "col": col, "kind": kind,
            "found": _short(found), "pattern": pattern}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _CellScan:
    """One cell's findings; `aliases` (local name -> dotted origin) is shared across cells."""

    def __init__(self, cell: Cell, patterns: SuspiciousPatterns, strings: list[tuple[str, re.Pattern[str]]],
                 aliases: dict[str, str]):
        self.cell, self.p, self.strings, self.aliases = cell, patterns, strings, aliases
        self.out: list[dict[str, Any]] = []

    def add(self, node: ast.AST, kind: str, found: str, pattern: str) -> None:
        line = getattr(node, "lineno", 1)
        self.out.append(_finding(self.cell, line, kind, found, pattern, getattr(node, "end_lineno", line),
                                 getattr(node, "col_offset", 0)))

    def resolve(self, node: ast.AST) -> str | None:
        """`o.kill` after `import os as o` -> 'os.kill'; `kill` after `from os import kill` -> 'os.kill'."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        origin = self.aliases.get(head, head)
        return f"{origin}.{rest}" if rest else origin

    def scan(self, tree: ast.AST) -> list[dict[str, Any]]:
        parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.imports(node)
            elif isinstance(node, (ast.Attribute, ast.Name)):
                parent = parents.get(id(node))
                if not (isinstance(parent, ast.Attribute) and parent.value is node):  # whole chains only
                    self.reference(node)
            if isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for target in targets:
                    self.patch(node, target)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in self.p.attributes:
                    self.add(node, "attribute", node.name, node.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                self.string(node)
        return self.out

    def imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
                self.module(node, alias.name)
            return
        base = node.module or ""
        self.module(node, base)
        for alias in node.names:
            full = f"{base}.{alias.name}" if base else alias.name
            self.aliases[alias.asname or alias.name] = full
            if base and alias.name != "*":
                self.module(node, full)
                self.dotted_name(node, full, "call")

    def module(self, node: ast.AST, name: str) -> None:
        for pattern in self.p.modules:
            if name == pattern or name.startswith(pattern + "."):
                self.add(node, "import", name, pattern)
                return

    def dotted_name(self, node: ast.AST, dotted: str, kind: str) -> bool:
        """A pattern of `calls` matching the name or one of its prefixes (sys.modules of sys.modules.get)."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            for pattern in self.p.calls:
                if fnmatch.fnmatchcase(prefix, pattern):
                    self.add(node, kind, prefix, pattern)
                    return True
        return False

    def reference(self, node: ast.Attribute | ast.Name) -> None:
        dotted = self.resolve(node)
        if dotted and self.dotted_name(node, dotted, "call"):
            return
        names = [node.attr] if isinstance(node, ast.Attribute) else [node.id]
        inner = node.value if isinstance(node, ast.Attribute) else None
        while isinstance(inner, ast.Attribute):
            names.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name):
            names.append(inner.id)
        hit = next((n for n in names if n in self.p.attributes), None)
        if hit:
            self.add(node, "attribute", ast.unparse(node), hit)

    def call(self, node: ast.Call) -> None:
        name = self.resolve(node.func)
        if name is None:
            return
        first = node.args[0] if node.args else None
        if name in self.p.dynamic_calls and first is not None and _literal_str(first) is None:
            self.add(node, "dynamic", f"{name}({ast.unparse(first)})", name)
        if name in self.p.listing_calls:
            climbs = [c.value for a in node.args for c in ast.walk(a)
                      if isinstance(c, ast.Constant) and isinstance(c.value, str) and _PARENT.search(c.value)]
            if climbs:
                self.add(node, "listing", f"{name}({climbs[0]!r})", name)
        if name in self.p.delete_calls:
            path = _literal_str(first)
            if path is None or path.startswith(("/", "~", "\\")) or _PARENT.search(path) or re.match(r"\w:", path):
                self.add(node, "delete", ast.unparse(node), name)
        if name in self.p.shell_calls:
            command = _literal_str(first)
            if isinstance(first, (ast.List, ast.Tuple)) and all(_literal_str(e) is not None for e in first.elts):
                command = " ".join(_literal_str(e) or "" for e in first.elts)
            bad = _disallowed_command(command, self.p.shell_allowed) if command is not None else name
            if bad:
                self.add(node, "shell", ast.unparse(node), bad)
        if name == "setattr" and first is not None:
            self.patch(node, first, whole=True)

    def patch(self, node: ast.AST, target: ast.AST, whole: bool = False) -> None:
        """`keras.Model.fit = f`, `del builtins.open`, `setattr(keras.Model, 'fit', f)`."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self.patch(node, elt)
            return
        if not (isinstance(target, ast.Attribute) or whole):
            return
        dotted = self.resolve(target)
        if dotted and dotted.split(".")[0] in self.p.patched_modules:
            self.add(node, "patch", dotted, dotted.split(".")[0])

    def string(self, node: ast.Constant) -> None:
        text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
        if text in self.p.attributes:
            self.add(node, "attribute", repr(text), text)
            return
        label = _string_label(text, self.strings)
        if label:
            self.add(node, "string", repr(node.value), label)

