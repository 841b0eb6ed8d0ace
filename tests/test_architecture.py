"""The layout's rules, read from the source: imports run one way, no import circles, no file over 500 lines, and the
module paths that saved pipeline folders record still import.

Import direction (docs/architecture.md): commands → app / evaluation / export / training / hub.loading → pipelines →
models / image_processor / regions / losses / hub.registry → synthesis → utils.
"""

import ast
import importlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source folder → the package it is installed as (pyproject's package-dir remap).
ROOTS = {REPO / "stablepaint": "stablepaint", REPO / "pipelines": "stablepaint.pipelines"}
MAX_LINES = 500


def _module_files():
    for folder, package in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder)
            if "shipped" in relative.parts:  # saved pipeline folders' entry points, not library code
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([package] + parts), path


MODULES = dict(_module_files())


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str, path: Path):
    """Every stablepaint module `module` imports, at any depth (function-level imports included: an import hidden
    in a function is still a dependency), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "stablepaint")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "stablepaint":
                continue
            for alias in node.names:  # `from package import submodule` depends on the submodule
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return {name for name in found if name != module}


def _ancestors(module: str):
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph():
    """Module → the modules it imports, plus the `__init__` of every other package it enters (importing
    `stablepaint.hub.registry` runs `stablepaint/hub/__init__.py`)."""
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for target in _imports(module, path):
            edges.add(target)
            edges.update(package for package in _ancestors(target) if package not in _ancestors(module))
        graph[module] = {edge for edge in edges if edge in MODULES and edge != module}
    return graph


GRAPH = import_graph()


def _layer(module: str) -> str:
    """The layer of a module: `stablepaint.<first part>` (pipelines and hub sub-modules are kept apart)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "stablepaint"
    if parts[1] == "hub" and len(parts) > 2:
        return f"hub.{parts[2]}"
    return parts[1]


# What each layer may import (besides itself). Anything not listed is forbidden.
ALLOWED = {
    "utils": set(),
    "synthesis": {"utils"},
    "image_processor": {"utils", "regions", "palette"},
    "regions": {"utils"},
    "palette": {"utils", "regions"},  # palette lock, .gpl files
    "layers": {"utils", "regions", "palette"},  # layered output: .psd / .ora
    "reference": {"utils", "regions"},  # reference coloring: region correspondence → dense hints
    "region_tokens": {"utils", "regions", "palette"},  # regions as tokens of the learned flats model
    "losses": {"utils"},
    "models": {"utils", "losses"},
    "metrics": {"utils", "regions", "models"},
    "hub": set(),
    "hub.registry": {"utils"},  # utils.atomic: save_shipped writes its folder in one rename
    "hub.cards": {"utils"},
    "hub.remote_code": set(),
    "hub.shipped": set(),
    "pipelines": {
        "utils",
        "image_processor",
        "regions",
        "reference",
        "region_tokens",
        "palette",
        "layers",
        "losses",
        "models",
        "hub.registry",
        "hub.cards",
        "hub.remote_code",
    },
    "hub.loading": {"hub.registry", "pipelines"},
    "batch": {"utils"},  # folders of linearts through a pipeline object it is given (imports no pipeline)
    "data": {"utils", "synthesis", "image_processor"},
    "training": {
        "utils",
        "synthesis",
        "image_processor",
        "regions",
        "losses",
        "models",
        "pipelines",
        "data",
        "hub.cards",
        "hub.remote_code",
        "hub.registry",
    },
    "evaluation": {
        "utils",
        "synthesis",
        "image_processor",
        "regions",
        "metrics",
        "models",
        "pipelines",
        "data",
        "hub.loading",
        "hub.registry",
    },
    "export": {"utils", "models", "pipelines"},
    "app": {
        "utils",
        "synthesis",
        "image_processor",
        "regions",
        "pipelines",
        "hub.loading",
        "hub.registry",
        "batch",
        "palette",
        "layers",
    },
    "commands": {
        "utils",
        "synthesis",
        "image_processor",
        "data",
        "hub.cards",
        "hub.loading",
        "hub.registry",
        "evaluation",
        "export",
        "app",
        "batch",
        "palette",
        "layers",
    },
}


def test_every_module_has_a_layer_with_rules():
    layers = {_layer(module) for module in MODULES} - {"stablepaint"}
    assert layers <= set(ALLOWED), f"modules without import rules: {sorted(layers - set(ALLOWED))}"


def test_imports_run_one_way():
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer == "stablepaint":  # the lazy top-level package names the public API only
            continue
        for target in targets:
            target_layer = _layer(target)
            # `stablepaint.hub` (its `__init__`, entered by every `stablepaint.hub.*` import) imports nothing itself.
            if target_layer in (layer, "stablepaint", "hub") or target_layer in ALLOWED[layer]:
                continue
            wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layer direction:\n" + "\n".join(sorted(wrong))


def test_key_directions_named_in_the_design():
    """The directions the design names, spelled out (the table above implies them; this says them plainly)."""
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer == "models":
            assert not {_layer(t) for t in targets} & {"pipelines", "training"}, module
        if layer == "synthesis":
            assert "models" not in {_layer(t) for t in targets}, module
        if layer != "commands":
            assert "commands" not in {_layer(t) for t in targets}, module
        if layer in ("hub.registry", "hub.cards", "hub.remote_code"):
            assert "pipelines" not in {_layer(t) for t in targets}, module


def _strongly_connected(graph):
    """Tarjan's algorithm, iteratively: the strongly connected components of `graph`."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def test_no_import_circles():
    circles = [sorted(component) for component in _strongly_connected(GRAPH) if len(component) > 1]
    assert not circles, f"import circles: {circles}"


def test_the_circle_detector_finds_a_circle():
    """The detector itself: a planted a → b → c → a circle is found, a chain is not."""
    circle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [sorted(c) for c in _strongly_connected(circle) if len(c) > 1] == [["a", "b", "c"]]
    assert all(len(c) == 1 for c in _strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}))


def test_no_library_file_over_500_lines():
    long = {
        str(path.relative_to(REPO)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_argparse_only_in_commands_and_training():
    users = [
        module
        for module, path in MODULES.items()
        if _layer(module) not in ("commands", "training")
        and any(
            isinstance(node, ast.Import) and any(alias.name == "argparse" for alias in node.names)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert not users, f"library modules that parse command lines: {users}"


def test_importing_stablepaint_is_lazy():
    code = (
        "import sys, stablepaint; "
        "heavy = [m for m in ('diffusers', 'torch', 'skimage', 'stablepaint.pipelines') if m in sys.modules]; "
        "print(heavy); assert not heavy, heavy; "
        "from stablepaint import StencilTorchPipeline, load_pipeline; "
        "assert 'stablepaint.pipelines' in sys.modules and 'stablepaint.app' not in sys.modules"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_unknown_top_level_name_is_an_attribute_error():
    import stablepaint

    with pytest.raises(AttributeError, match="no attribute 'NoSuchPipeline'"):
        stablepaint.NoSuchPipeline  # noqa: B018
    assert "StablePaintPipeline" in dir(stablepaint) and "StablePaintPipeline" in stablepaint.__all__


SHIPPED = sorted((REPO / "stablepaint" / "hub" / "shipped").glob("*/model_index.json"))


@pytest.mark.parametrize("index_file", SHIPPED, ids=[path.parent.name for path in SHIPPED])
def test_module_paths_recorded_by_saved_folders_still_import(index_file):
    """Folders saved before the layout change record `stablepaint.models.<file>` and the pipeline class: both
    resolve. (Loading each shipped folder end to end is tests/test_shipped_models.py.)"""
    index = json.loads(index_file.read_text())
    pipelines = importlib.import_module("stablepaint.pipelines")
    assert hasattr(pipelines, index["_class_name"])
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] in (None, "diffusers", "transformers"):
            continue
        module, class_name = value
        assert hasattr(importlib.import_module(module), class_name), f"{index_file}: {name} = {value}"
    entry = (index_file.parent / "pipeline.py").read_text()
    exec_namespace = {}
    exec(compile(entry, str(index_file.parent / "pipeline.py"), "exec"), exec_namespace)  # the custom-pipeline file
    assert index["_class_name"] in exec_namespace
