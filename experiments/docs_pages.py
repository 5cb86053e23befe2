"""The documentation's pages: the numbers they quote through markers, and their links.

A marker is `<!--r:KEY-->VALUE<!--/r-->` in README.md or docs/*.md (outside code): KEY is a
dotted path into docs/results.json (`softmax.test_accuracy`, `relu_lr.runs.0.lr`), with an
optional format after `:` (`relu.epoch_ratio:.2f`; not `|`, which would split a
Markdown table's cell); numbers default to 4 decimals.
`python -m experiments.docs` fills the VALUEs; tests/test_docs.py fails when one differs, or when
a relative link or image does not resolve.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--r:([\w.:,%-]+)-->(.*?)<!--/r-->")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code is not a link


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def lookup(results: dict[str, Any], key: str) -> str:
    """The text a marker's KEY gives: the dotted path's value, formatted."""
    path, _, spec = key.partition(":")
    value: Any = results
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    if isinstance(value, float) and not spec:
        spec = ".4f"
    return format(value, spec)


def _outside_code(text: str) -> Iterator[tuple[bool, str]]:
    """The page in pieces, each with whether it is prose (markers in code are examples)."""
    start = 0
    for code in CODE.finditer(text):
        yield True, text[start : code.start()]
        yield False, code.group()
        start = code.end()
    yield True, text[start:]


def markers(text: str) -> Iterator[tuple[str, str]]:
    """(KEY, VALUE) of every marker in a page's prose."""
    for prose, piece in _outside_code(text):
        for match in MARKER.finditer(piece) if prose else ():
            yield match.group(1), match.group(2)


def fill(text: str, results: dict[str, Any]) -> str:
    """The page with every marker's VALUE taken from results."""

    def value(m: re.Match) -> str:
        return f"<!--r:{m[1]}-->{lookup(results, m[1])}<!--/r-->"

    return "".join(MARKER.sub(value, p) if prose else p for prose, p in _outside_code(text))


def fill_pages(results: dict[str, Any], root: Path = ROOT) -> list[Path]:
    """Refills every page's markers; returns the pages that changed."""
    changed = []
    for page in pages(root):
        text = page.read_text()
        if (new := fill(text, results)) != text:
            page.write_text(new)
            changed.append(page)
    return changed


def anchors(text: str) -> set[str]:
    """The anchors a Git host gives the page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", CODE.sub("", text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def broken_links(root: Path = ROOT) -> list[str]:
    """Every relative link or image in the pages whose file (or heading anchor) is missing, as
    `page: target`."""
    broken = []
    for page in pages(root):
        for match in LINK.finditer(CODE.sub("", page.read_text())):
            target = match.group(1) or match.group(2)
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(root)}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
                broken.append(f"{page.relative_to(root)}: {target} (no such heading)")
    return broken
