"""Make a saved pipeline folder load on the Hub without stablepaint installed.

`prepare_hub_folder(folder, out)` writes, next to the weights, the code a diffusers user needs:

- `stablepaint_standalone.py`: the source of every stablepaint module the pipeline needs, flattened into one file
  (the modules are collected from the pipeline's module by following its `stablepaint` imports);
- `pipeline.py` and `<component>/modeling_stablepaint.py`: small entry points that import the installed stablepaint
  class when stablepaint is installed (so both loading paths give the same classes) and the standalone copy otherwise;
- `model_index.json` in diffusers' custom-code form (`"_class_name": ["pipeline", "<Pipeline>"]`,
  `"<component>": ["modeling_stablepaint", "<Model>"]`),

so that `DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)` works with only diffusers (and its
usual dependencies) installed. `push_to_hub` uploads such a folder.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Sequence, Union

PACKAGE = "stablepaint"
STANDALONE_MODULE = "stablepaint_standalone"
COMPONENT_MODULE = "modeling_stablepaint"
PIPELINE_MODULE = "pipeline"
#: Files and folders of a training output folder that do not belong on the Hub.
IGNORE_PATTERNS = ("checkpoint-*", ".checkpoint-*", "*.tmp", "logs", "step_*", "epoch_*", "__pycache__")

_ENTRY_SOURCE = '''"""Written by stablepaint: loads `{name}` from the installed stablepaint, or from the standalone copy of its code
kept in this repository (`{standalone}.py`) when stablepaint is not installed."""

import importlib

try:
    {name} = importlib.import_module("{module}").{name}
except ImportError:
    from .{standalone} import {name}
'''


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of {module}")
    return Path(spec.origin)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module name of a `from X import ...` statement found in `module`."""
    if node.level == 0:
        return node.module
    package = module.split(".")
    if not _module_file(module).name == "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _internal_imports(module: str, tree: ast.Module) -> List[ast.ImportFrom]:
    nodes = []
    for node in tree.body:
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == PACKAGE for alias in node.names):
            raise ValueError(f"{module}: `import {PACKAGE}...` cannot be bundled; use `from ... import` instead")
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0] == PACKAGE):
            nodes.append(node)
    return nodes


def collect_modules(entry: str) -> List[str]:
    """The stablepaint modules `entry` needs (following top-level `from stablepaint... import` and relative imports),
    dependencies first. A name imported from a package `__init__` must be imported from its defining module."""
    order: List[str] = []
    visiting: set = set()

    def visit(module: str):
        if module in order:
            return
        if module in visiting:
            raise ValueError(f"import cycle through {module}")
        visiting.add(module)
        path = _module_file(module)
        if path.name == "__init__.py":
            raise ValueError(f"cannot bundle the package {module}: import the names from the modules that define them")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _internal_imports(module, tree):
            visit(_resolve(module, node))
        visiting.discard(module)
        order.append(module)

    visit(entry)
    return order


def standalone_source(entry_modules: Sequence[str]) -> str:
    """One Python file holding the flattened source of `entry_modules` and their stablepaint dependencies.

    Intra-package imports are dropped (the names are defined earlier in the same file), an aliased import becomes an
    assignment, and top-level names defined by two modules with different code are an error (they would shadow each
    other)."""
    modules: List[str] = []
    for entry in entry_modules:
        for module in collect_modules(entry):
            if module not in modules:
                modules.append(module)
    parts = [
        '"""Standalone copy of the stablepaint code this pipeline needs, flattened into one file by stablepaint so the',
        "pipeline loads without stablepaint installed. Generated; edit stablepaint itself, not this file.",
        "Modules: " + ", ".join(modules) + '."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    defined: Dict[str, tuple] = {}
    for module in modules:
        source = _module_file(module).read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        drop = set()
        aliases = []
        for node in _internal_imports(module, tree):
            drop.update(range(node.lineno - 1, node.end_lineno))
            aliases += [f"{alias.asname} = {alias.name}" for alias in node.names if alias.asname]
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                drop.update(range(node.lineno - 1, node.end_lineno))
            if (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and node is tree.body[0]
            ):
                drop.update(range(node.lineno - 1, node.end_lineno))  # the module docstring
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                drop.update(range(node.lineno - 1, node.end_lineno))
            for name in _defined_names(node):
                code = ast.dump(node)
                if name in defined and defined[name][1] != code:
                    raise ValueError(f"{name} is defined by both {defined[name][0]} and {module}: cannot flatten")
                defined[name] = (module, code)
        body = [line for index, line in enumerate(lines) if index not in drop]
        parts += [f"# {'-' * 110}", f"# {module}", f"# {'-' * 110}", *body, *aliases, ""]
    return "\n".join(parts).rstrip() + "\n"


def _defined_names(node: ast.stmt) -> List[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name) and target.id != "__all__"]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _class_module(library: str, name: str) -> str:
    """The module that defines `name`, given the library recorded in `model_index.json` (for stablepaint classes, a
    module or package that exports it)."""
    return getattr(importlib.import_module(library), name).__module__


def prepare_hub_folder(
    folder: Union[str, os.PathLike], out: Union[str, os.PathLike], ignore: Sequence[str] = ()
) -> Path:
    """Copy the saved pipeline `folder` to `out` (without checkpoints and logs) and add the code that lets it load with
    `DiffusionPipeline.from_pretrained(out_or_repo_id, trust_remote_code=True)` without stablepaint installed.

    `ignore`: more file name patterns to leave out (e.g. the training logging folder)."""
    folder, out = Path(folder), Path(out)
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise FileNotFoundError(f"`folder` must be a saved pipeline (with model_index.json); got {folder}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"`out` must be a new or empty folder; {out} is not empty")
    index = json.loads(index_file.read_text(encoding="utf-8"))
    class_name = index["_class_name"]
    if isinstance(class_name, list):
        raise ValueError(f"{folder} is already in custom-code form (_class_name {class_name})")
    pipeline_module = _class_module(f"{PACKAGE}.pipelines", class_name)
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns(*IGNORE_PATTERNS, *ignore), dirs_exist_ok=True)

    entries = [pipeline_module]
    components = {}
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        library, name = value
        if library.split(".")[0] != PACKAGE:
            continue  # a diffusers / transformers component loads as usual
        module = _class_module(library, name)
        entries.append(module)
        components[key] = (module, name)

    standalone = standalone_source(entries)
    (out / f"{STANDALONE_MODULE}.py").write_text(standalone, encoding="utf-8")
    (out / f"{PIPELINE_MODULE}.py").write_text(
        _ENTRY_SOURCE.format(module=pipeline_module, name=class_name, standalone=STANDALONE_MODULE), encoding="utf-8"
    )
    index["_class_name"] = [PIPELINE_MODULE, class_name]
    for key, (module, name) in components.items():
        # diffusers imports a component's code from its own folder, relative imports included.
        (out / key).mkdir(exist_ok=True)
        (out / key / f"{STANDALONE_MODULE}.py").write_text(standalone, encoding="utf-8")
        (out / key / f"{COMPONENT_MODULE}.py").write_text(
            _ENTRY_SOURCE.format(module=module, name=name, standalone=STANDALONE_MODULE), encoding="utf-8"
        )
        index[key] = [COMPONENT_MODULE, name]
    (out / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
