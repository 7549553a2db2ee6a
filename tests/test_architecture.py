"""The layering contract, checked on the source: bottom to top

    foundation, kernels  errors, constants, table format, HWGQ formulas, JIT, numba kernels
    core API             solve, tables, file formats, presets, weights, torch, table plots
    lloydmax.analysis    the data side, from the repository's analysis/ folder
    lloydmax.cli         the command line: the only layer that reaches into analysis

Every import counts, function-level ones included.  No module may import a layer above its
own, and the module graph has no cycle.  Also: one installed import name, and no source
file over 500 lines.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"lloydmax": ROOT / "lloydmax", "lloydmax.analysis": ROOT / "analysis"}
# stdlib-only or kernel modules at the bottom; everything they import must be bottom too
FOUNDATION = {"lloydmax.errors", "lloydmax._version", "lloydmax.constants", "lloydmax._format",
              "lloydmax._hwgq", "lloydmax._jit"}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "lloydmax" and parts[:1] == ["analysis"]:
                continue
            out[name] = path
    return out


MODULES = _modules()


def _layer(name: str) -> int:
    if name in FOUNDATION or name == "lloydmax._kernels" or name.startswith("lloydmax._kernels."):
        return 0
    if name == "lloydmax.analysis" or name.startswith("lloydmax.analysis."):
        return 2
    if name in ("lloydmax.cli", "lloydmax.__main__") or name.startswith("lloydmax.cli."):
        return 3
    return 1


def _resolve(module: str, is_package: bool, node) -> list[str]:
    """Internal modules named by one import statement (submodules where they exist)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = []
        for alias in node.names:
            candidate = f"{prefix}.{alias.name}"
            names.append(candidate if candidate in MODULES else prefix)
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            deps.update(_resolve(name, is_package, node))
        # importlib.import_module("lloydmax.x") / a lazy table of ".x" module names
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(".") and f"{name}{text}" in MODULES and is_package:
                deps.add(f"{name}{text}")
            elif text in MODULES and text != name:
                deps.add(text)
    deps.discard(name)
    return deps


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_source_tree_is_what_the_contract_reads():
    assert "lloydmax.analysis.histogram" in MODULES and "lloydmax._solver" in MODULES
    assert "lloydmax._solver" in GRAPH["lloydmax._check"]
    assert "lloydmax" in GRAPH["lloydmax.analysis.report"]  # `import lloydmax as lm`


def test_no_upward_import():
    upward = sorted((src, dst) for src, deps in GRAPH.items() for dst in deps
                    if _layer(dst) > _layer(src))
    assert upward == [], "imports of a higher layer: " + ", ".join(f"{a} -> {b}" for a, b in upward)


def test_only_the_cli_reaches_into_analysis():
    reaching = sorted(src for src, deps in GRAPH.items()
                      if any(_layer(d) == 2 for d in deps) and _layer(src) != 2)
    assert all(_layer(src) == 3 for src in reaching), reaching


def test_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    counter = [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_contract_would_see_a_cycle_and_an_upward_import():
    fake = ast.parse("from .cli import main\nimport lloydmax.analysis.report\n")
    found = set()
    for node in fake.body:
        found.update(_resolve("lloydmax._solver", False, node))
    assert {"lloydmax.analysis.report"} <= found
    assert any(_layer(d) > _layer("lloydmax._solver") for d in found)


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_one_import_name_outside_the_checkout(tmp_path):
    code = ("import importlib.util, lloydmax.analysis as la; "
            "print(la.__name__, importlib.util.find_spec('analysis'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["lloydmax.analysis", "None"]


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("lloydmax-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
        names = set(zf.namelist())
    assert {t for t in tops if not t.endswith(".dist-info")} == {"lloydmax"}
    # every source module ships, at the path of its import name
    wanted = {name.replace(".", "/") + ("/__init__.py" if path.name == "__init__.py" else ".py")
              for name, path in MODULES.items()}
    assert wanted - names == set()
    assert {"lloydmax/py.typed", "lloydmax/schema/table-1.json"} <= names


@pytest.mark.parametrize("module", ["lloydmax", "lloydmax.torch", "lloydmax._format"])
def test_light_imports_do_not_load_numba(module):
    code = (f"import sys, {module}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'scipy'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
