"""Imports point one way: orchestration on top, leaves at the bottom, no cycles between parts.

Every `import` in facepad's source is read with ast (module level and inside functions alike), so
a lazy import inside a function breaks a rule as surely as one at the top of the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facepad"
PARTS = {
    "data",
    "models",
    "train",
    "evaluate",
    "infer",
    "serve",
    "experiments",
    "metrics",
    "config",
}

# part -> the parts it must never import.
FORBIDDEN = {
    "metrics": PARTS - {"metrics"},  # a pure numpy leaf
    "config": PARTS - {"config"},
    "data": {"models", "train", "evaluate", "infer", "serve", "experiments"},
    "models": {"data", "train", "evaluate", "infer", "serve", "experiments"},
    "train": {"evaluate", "infer", "serve", "experiments"},
    "evaluate": {"experiments", "infer", "serve"},
    "infer": {"train", "evaluate", "serve", "experiments"},
    "serve": {"train", "evaluate", "experiments"},
    "experiments": {"serve"},
}
# Modules on the torch-free path (the `infer` install has no torch): no torch import at all at
# module level (a lazy import inside the function that needs torch is how the torch backend loads).
TORCH_FREE = [
    "metrics.py",
    "infer/backend.py",
    "infer/predictor.py",
    "infer/onnx_backend.py",
    "data/images.py",
    "data/crop.py",
    "data/faces.py",
]


def part_of(module: str) -> str | None:
    """facepad.train.loop -> 'train'; facepad.metrics -> 'metrics'; facepad.cli -> None."""
    pieces = module.split(".")
    if pieces[0] != "facepad" or len(pieces) < 2:
        return None
    return pieces[1] if pieces[1] in PARTS else None


def imported_modules(path: Path, package: str, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules a file imports (`from facepad import metrics` included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = from_base(node, package)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def from_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a `from X import ...` reads from (relative ones resolved)."""
    base = node.module or ""
    if node.level:  # relative: resolve against this file's package
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    return base


def imported_facepad_modules(path: Path, package: str, modules: set[str]) -> set[str]:
    """The facepad modules (of `modules`) a file imports, lazy and TYPE_CHECKING ones included:
    `from P import name` imports the module P.name where there is one, else P itself."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = from_base(node, package)
            names |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                      for a in node.names}  # fmt: skip
    return names & modules


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part_edges(root: Path) -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> the files where it happens, for every .py under root."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        source = part_of(name)
        if source is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in imported_modules(path, package):
            target = part_of(imported)
            if target is not None and target != source:
                edges.setdefault((source, target), []).append(str(path.relative_to(root)))
    return edges


def module_edges(root: Path) -> dict[tuple[str, str], list[str]]:
    """(importing module, imported module) -> the file importing, for every module under root."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges: dict[tuple[str, str], list[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in imported_facepad_modules(path, package, set(paths)):
            if imported != name:
                edges.setdefault((name, imported), []).append(str(path.relative_to(root)))
    return edges


def violations(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    return [
        f"{source} imports {target} in {', '.join(sorted(set(files)))}"
        for (source, target), files in sorted(edges.items())
        if target in FORBIDDEN.get(source, set())
    ]


def cycle(edges: dict[tuple[str, str], list[str]]) -> list[str] | None:
    """A cycle of the graph (parts or modules, as a list that ends where it starts), or None."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_every_part_exists():
    found = {part_of(module_name(p, PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert found >= PARTS, f"parts missing from facepad/: {PARTS - found}"


def test_imports_point_one_way():
    assert violations(part_edges(PACKAGE)) == []


def test_no_cycles_between_parts():
    assert cycle(part_edges(PACKAGE)) is None


def test_no_import_cycles_between_modules():
    """Not even through a lazy import: a module imported inside a function still needs its
    importer's names, and the pair can only be read (or moved) together."""
    found = cycle(module_edges(PACKAGE))
    assert found is None, "import cycle: " + " -> ".join(found or [])


@pytest.mark.parametrize("rel", TORCH_FREE)
def test_the_torch_free_path_imports_no_torch_at_module_level(rel):
    path = PACKAGE / rel
    package = module_name(path, PACKAGE).rpartition(".")[0]
    names = imported_modules(path, package, top_level_only=True)
    assert not {n for n in names if n == "torch" or n.startswith("torch.")}, names
    assert not {n for n in names if part_of(n) in ("models", "train")}, names


def test_the_checker_catches_a_wrong_import_and_a_cycle(tmp_path):
    """The rules above can fail: a fake tree where train imports evaluate and back."""
    root = tmp_path / "facepad"
    for folder in ("train", "evaluate", "models"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "train" / "loop.py").write_text("def f():\n    from facepad.evaluate import report\n")
    (root / "evaluate" / "report.py").write_text("from ..train import loop\n")
    (root / "models" / "m.py").write_text("import facepad.models.registry\n")
    edges = part_edges(root)
    assert violations(edges) == ["train imports evaluate in train/loop.py"]
    assert cycle(edges) in (["evaluate", "train", "evaluate"], ["train", "evaluate", "train"])


def test_the_checker_catches_a_cycle_between_modules_of_one_part(tmp_path):
    """A lazy import and a `from package import module` close a cycle inside models; a module
    importing its package's names (not a module) only points at the package."""
    root = tmp_path / "facepad"
    (root / "models").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "models" / "__init__.py").write_text("from facepad.models.b import f\n")
    (root / "models" / "a.py").write_text("def g():\n    from facepad.models import b\n")
    (root / "models" / "b.py").write_text("from . import a\ndef f():\n    pass\n")
    (root / "models" / "c.py").write_text("from facepad.models import f\n")
    edges = module_edges(root)
    assert ("facepad.models.c", "facepad.models") in edges
    assert ("facepad.models.a", "facepad.models") not in edges
    found = cycle(edges)
    assert found is not None and set(found) == {"facepad.models.a", "facepad.models.b"}
    (root / "models" / "a.py").write_text("def g():\n    pass\n")
    assert cycle(module_edges(root)) is None
