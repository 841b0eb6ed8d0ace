"""Every `# Copied from diffusers.<path>` block in stablepaint must still match the installed diffusers.

diffusers' own `utils/check_copies.py` only scans its tree, so this keeps our marked copies honest (STYLE.md, item 9).
A marker may end with `with A->B` replacements, applied to the diffusers source before comparing.
"""

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(?P<indent>\s*)# Copied from (?P<target>diffusers\.[\w.]+)(?:\s+with\s+(?P<subs>.+))?$")


def find_copies():
    for path in sorted(list((REPO / "stablepaint").rglob("*.py")) + list((REPO / "pipelines").rglob("*.py"))):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            match = MARKER.match(line)
            if match:
                yield pytest.param(path, number, match, id=f"{path.relative_to(REPO)}:{number + 1}")


def resolve(target: str):
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def definition_source(path: Path, number: int) -> str:
    """The source of the def/class right after the marker on line `number` (0-based), decorators included."""
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if first == number + 2:
                return textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno])).rstrip()
    raise AssertionError(f"{path.name}:{number + 1}: no def or class right after the `Copied from` marker")


def normalize(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.splitlines() if line.strip())


@pytest.mark.parametrize("path, number, match", list(find_copies()))
def test_marked_copies_match_diffusers(path, number, match):
    original = textwrap.dedent(inspect.getsource(resolve(match["target"]))).rstrip()
    for sub in (match["subs"] or "").split(","):
        if "->" in sub:
            old, new = (s.strip() for s in sub.split("->"))
            original = original.replace(old, new)
    ours = definition_source(path, number)
    assert normalize(ours) == normalize(original), f"{path.name}:{number + 1} drifted from {match['target']}"


def test_at_least_one_copy_is_checked():
    assert list(find_copies()), "the copy checker found no marked copies: the marker pattern is broken"
