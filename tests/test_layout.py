"""The package's structure: data flows one way, and inference has one path.

Imports are read from the source (``ast``), function-local ones included: a lazy import
is still an edge of the design.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mnist_logreg"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or any(
        path.parent.glob(path.name + ".*.so")) or path.with_suffix(".c").is_file()


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (relative imports; the package has no absolute ones)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}".strip(".")
                    deps.add(sub if is_module(sub) else target)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("mnist_logreg") for a in node.names), f"{path}: absolute import"
        deps.discard(name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep] if dep in path else [node, dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_reader_sees_the_imports():
    graph = import_graph()
    assert {"training.preprocess", "training.model", "runs", "training.train", "export", "serve", "data.datasets",
            "cache", "reading.images"} <= set(graph)
    assert "training.preprocess" in graph["training.model"] and "data.formats" in graph["data.datasets"]
    assert "training._kernels" in graph["training.kernel_choice"]  # the C extension: ``from . import _kernels``


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    # The package's facade imports its public names lazily, by string; nothing imports it back.
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", ["runs", "export", "reading.predict", "serve", "report"])
def test_saving_and_inference_do_not_reach_into_training(module):
    assert "training.train" not in import_graph()[module]


def test_reading_and_what_rests_on_it_never_import_training():
    """The two halls of the layout: ``reading/`` (and ``serve/``, the run folders, the
    report, ``compare``, ``evaluate``, the metrics) import nothing from ``training/``, not
    even lazily."""
    graph = import_graph()
    readers = [m for m in graph if m.split(".")[0] in ("reading", "serve")] + [
        "runs", "report", "compare", "evaluate", "metrics"]
    assert len(readers) >= 9
    for module in readers:
        assert not [d for d in graph[module] if d.split(".")[0] == "training"], (module, graph[module])


@pytest.mark.parametrize("module", ["export", "reading.predict", "serve", "api", "report"])
def test_no_consumer_preprocesses_images_by_itself(module):
    """Each one runs ``model.Classifier`` (through ``training.checkpoint.Checkpoint``) or the NumPy engine,
    which own the preprocessing."""
    assert "training.preprocess" not in import_graph()[module]


def _top_level_imports(path: Path) -> tuple[set[str], bool]:
    """The package modules a module imports when it is imported (module-level statements,
    not functions' lazy imports or ``if TYPE_CHECKING``), and whether it imports torch so."""
    name = module_name(path)
    package = [p for p in (name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]) if p]
    deps, torch = set(), False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}".strip(".")
                    deps.add(sub if is_module(sub) else target)
            torch |= not node.level and (node.module or "").split(".")[0] == "torch"
        elif isinstance(node, ast.Import):
            torch |= any(a.name.split(".")[0] == "torch" for a in node.names)
    return deps - {name}, torch


@pytest.mark.parametrize("module", ["serve", "reading.predict", "reading.lite", "reading.images", "reading.modelfile",
                                    "data.formats", "runs", "compare", "evaluate", "report", "metrics",
                                    "data.sources"])
def test_inference_modules_do_not_load_torch_when_imported(module):
    """Importing what predict, serve, evaluate and compare run loads no module that imports torch at
    its top (the lazy import of a function called elsewhere, images.load_digit's or
    the checkpoint's load_model, is allowed; the subprocess tests of predict and serve check what
    actually runs)."""
    imports = {module_name(p): _top_level_imports(p) for p in PACKAGE.rglob("*.py")}
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen or m not in imports:
            continue
        seen.add(m)
        deps, torch = imports[m]
        assert not torch, f"{module} imports {m}, which imports torch"
        # Importing a.b runs a/__init__.py first.
        todo += [*deps, *(".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1))]
