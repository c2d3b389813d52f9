"""The shape of the code itself: imports that run one way, small functions and modules.

These read the source with ``ast``; nothing here imports TensorFlow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "experiments"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 300
MAX_FMT_SKIPS = 5


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project's modules that ``module`` imports anywhere, functions included."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # `from a.b import c`: c may be a name, not a module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    graph = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text())
        graph[module] = _imported(tree, module, path.name == "__init__.py", known)
    return graph


def _parents(module: str) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_even_counting_imports_inside_functions():
    graph = _graph()
    # A package's __init__ importing its own submodules is how a package exposes them;
    # a submodule importing its package's __init__ back (directly or not) is the cycle.
    edges = {module: targets - _parents(module) for module, targets in graph.items()}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))


def test_the_benchmarks_import_one_way():
    """benchmarks/ is a folder of scripts importing each other by bare name (run_all, common)."""
    folder = SRC.parents[1] / "benchmarks"
    scripts = {path.stem: path for path in sorted(folder.glob("*.py"))}
    graph = {
        name: _imported(ast.parse(path.read_text()), name, False, set(scripts))
        for name, path in scripts.items()
    }
    assert graph["image_cache"] and graph["run_all"]  # the finder sees their imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_is_over_60_lines():
    long = []
    for module, path in _sources().items():
        for function in _functions(ast.parse(path.read_text())):
            lines = function.end_lineno - function.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{module}.{function.name}: {lines} lines")
    assert not long, long


def test_no_module_is_over_300_lines():
    long = {
        module: n
        for module, path in _sources().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_the_formatter_holds_the_code():
    skips = {
        module: n
        for module, path in _sources().items()
        if (n := path.read_text().count("# fmt: skip"))
    }
    assert sum(skips.values()) <= MAX_FMT_SKIPS, skips


@pytest.mark.parametrize(
    "lower, upper",
    [
        ("experiments.config", "experiments.training"),
        ("experiments.config", "experiments.tracking"),
        ("experiments.config", "experiments.models"),
        ("experiments.config", "experiments.data"),
        ("experiments.models", "experiments.tracking"),
        ("experiments.models", "experiments.training"),
        ("experiments.data", "experiments.training"),
        ("experiments.tracking", "experiments.training"),
        ("experiments.training", "experiments.commands"),
        ("experiments.reporting", "experiments.training"),
    ],
)
def test_imports_run_one_way(lower, upper):
    """commands -> training -> models, data, tracking, reporting -> config -> leaves."""
    graph = _graph()
    upward = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module == lower or module.startswith(lower + ".")
        for target in targets
        if target == upper or target.startswith(upper + ".")
    ]
    assert not upward, upward


HEAVY = ("tensorflow", "keras", "matplotlib", "mlflow", "optuna")


def test_imports_inside_functions_only_defer_a_heavy_library():
    """An import of the project's own inside a function is there for start-up time only."""
    sources = _sources()
    wrong = []
    for module, path in sources.items():
        for function in _functions(ast.parse(path.read_text())):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "experiments"
                ):
                    target = next(
                        (
                            sources[name]
                            for name in (f"{node.module}.{node.names[0].name}", node.module)
                            if name in sources
                        ),
                        None,
                    )
                    if target is None or not _imports_heavy_at_top(target):
                        wrong.append(f"{module}.{function.name} imports {node.module}")
    assert not wrong, wrong


def _imports_heavy_at_top(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        if any(name.split(".")[0] in HEAVY for name in names):
            return True
    return False


def test_the_command_line_starts_without_a_heavy_library():
    """``--help`` and a rejected override must not pay for TensorFlow, MLflow or matplotlib."""
    import subprocess
    import sys

    probe = (
        "import sys; import experiments.commands.app, experiments.commands.compare, "
        "experiments.commands.predict, experiments.commands.study; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
