"""Fingerprints of the code a rule runs, so that Snakemake reruns a job exactly when its code's
meaning changes.

A fingerprint covers the import closure of a rule's entry modules inside the ``laserflow``
package (found from the code: every ``import`` and ``from … import``, lazy ones included), each
module hashed from its syntax tree without docstrings. Comments, docstrings and formatting
therefore change nothing; any other edit to a module in the closure changes the fingerprint.
Rules pass it as a ``params`` value. The job plumbing (``laserflow.cli``, ``laserflow.worker``,
``laserflow.runtime``) is left out: it decides where a job runs, not what it computes (the worker's results are
tested equal to an in-process job's).
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "laserflow"
ROOT = Path(__file__).resolve().parent
PLUMBING = frozenset({"laserflow.cli", "laserflow.worker", "laserflow.runtime"})


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of package module ``name`` (a package's ``__init__.py``), if it exists."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    """The packages importing ``name`` executes first: a.b.c -> [a, a.b]."""
    parts = name.split(".")
    return [".".join(parts[:index]) for index in range(1, len(parts))]


def imported_modules(name: str, tree: ast.Module, root: Path = ROOT) -> set[str]:
    """The package modules one module imports (parent packages included)."""
    is_package = module_file(name, root) == root.joinpath(*name.split(".")[1:], "__init__.py")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    modules = {module for module in found if module.split(".")[0] == PACKAGE and module_file(module, root)}
    return modules | {parent for module in modules for parent in _parents(module)}


def normalised_source(path: Path) -> str:
    """A module's syntax tree without docstrings, as text: comments and layout do not show."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def closure(*entries: str, root: Path = ROOT) -> list[str]:
    """The entry modules and every package module they import, transitively (sorted)."""
    seen: set[str] = set()
    pending = [entry for entry in entries]
    while pending:
        name = pending.pop()
        if name in seen or name in PLUMBING:
            continue
        path = module_file(name, root)
        if path is None:
            raise ValueError(f"{name}: no such module in {root}")
        seen.add(name)
        pending += imported_modules(name, ast.parse(path.read_text(encoding="utf-8")), root) - seen
    return sorted(seen)


@lru_cache(maxsize=None)
def code_fingerprint(*entries: str, root: Path = ROOT) -> str:
    """A short hash of the meaning of the code that ``entries`` run."""
    digest = hashlib.sha256()
    for name in closure(*entries, root=root):
        digest.update(f"{name}\0{normalised_source(module_file(name, root))}\0".encode())
    return digest.hexdigest()[:16]
