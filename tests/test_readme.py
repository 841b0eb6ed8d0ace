"""The README is the user's entry point and docs/*.md the reference: the README's commands must be what CI runs, every
Python example of the README and of the docs must run, and every relative link between them must lead somewhere."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
MAX_README_LINES = 250

#: Every page checked: the README first, then docs/*.md, as paths relative to the repository root.
PAGES = ["README.md"] + sorted(path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("*.md"))

FENCE = re.compile(r"^```.*?^```[ \t]*$", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", flags=re.M)


def page_text(page: str) -> str:
    return (REPO / page).read_text()


def blocks(language: str, text: str = README):
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def python_examples():
    """`(id, code)` of every ```python block: ids are `<page>:<n>`, n counting the page's python blocks from 1."""
    return [
        pytest.param(code, id=f"{page}:{number}")
        for page in PAGES
        for number, code in enumerate(blocks("python", page_text(page)), start=1)
    ]


def prose(text: str) -> str:
    """The text without code blocks and inline code, where links are only illustrations."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str):
    return LINK.findall(prose(text))


def anchors(text: str) -> set:
    """The anchors GitHub gives the headings of a Markdown page (lower case, punctuation dropped, spaces → hyphens,
    `-1`, `-2`... for repeated headings)."""
    seen = {}
    result = set()
    for _, heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def test_first_two_commands_are_what_ci_runs():
    install, tests = (block.strip() for block in blocks("bash")[:2])
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "stablepaint " in install and "pip install" in install, "command 1 must install and run the main job"
    assert "pytest" in tests, "command 2 must run the tests"
    assert install in ci, "README command 1 is not in .ci/run verbatim"
    assert tests in ci, "README command 2 is not in .ci/run verbatim"
    assert ci.index(install) < ci.index(tests)


def test_readme_is_short():
    lines = len(README.splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines: move reference material to docs/ (max {MAX_README_LINES})"
    )


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.split("#")[0] for target in links(README)}
    missing = [page for page in PAGES[1:] if page not in linked]
    assert not missing, f"docs pages the README does not link to: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_lead_somewhere(page):
    """Every relative link or image of the page names an existing file, and its #anchor a heading of that page."""
    broken = []
    for target in links(page_text(page)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (REPO / page).parent / path if path else REPO / page
        if not file.resolve().is_file():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target} (no heading with anchor #{anchor})")
    assert not broken, f"{page}: broken links: {broken}"


@pytest.mark.slow
@pytest.mark.parametrize("code", python_examples())
def test_python_examples_run(code, request):
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    name = request.node.callspec.id
    assert result.returncode == 0, f"python block {name} failed:\n{code}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"python block {name} prints nothing: each example prints what it shows"
