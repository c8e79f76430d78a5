"""The study's generated Markdown (issue #29): numbers and tables as the documents show them, and
the files of named sections that the documents copy.

A generated file (``claims.md``, ``findings.md``) is a run of sections, each opened by
``<!-- section: NAME -->``. A document copies one whole section between
``<!-- generated: FILE#NAME -->`` and ``<!-- end generated -->``; :func:`refresh` fills every such
block from the files as they are, and the study's test requires every block to be its section.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pandas as pd


def signed(x: float, digits: int = 1) -> str:
    """``+1.2`` / ``−1.2`` (a true minus sign)."""
    return f"{x:+.{digits}f}".replace("-", "−")


def fmt(x, digits: int = 2, with_sign: bool = True) -> str:
    """A number for the tables (``−`` for minus; ``—`` where undefined)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "—"
    return signed(float(x), digits) if with_sign else f"{float(x):.{digits}f}"


def md_table(frame: pd.DataFrame) -> str:
    """A table as GitHub Markdown (numbers pre-formatted as strings)."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def sectioned(sections: dict[str, str]) -> str:
    """Sections as one Markdown file, each opened by ``<!-- section: NAME -->``."""
    return "\n".join(f"<!-- section: {k} -->\n{v}\n" for k, v in sections.items())


_SECTION = re.compile(r"<!-- section: (\S+) -->\n(.*?)(?=\n<!-- section: |\Z)", re.DOTALL)
_BLOCK = re.compile(r"(<!-- generated: (\S+) -->)(.*?)(<!-- end generated -->)", re.DOTALL)


def sections_of(text: str) -> dict[str, str]:
    """A generated file's sections: name → body (without its marker and trailing blank)."""
    return {m[1]: m[2].strip("\n") for m in _SECTION.finditer(text)}


def blocks_of(doc: str) -> list[tuple[str, str]]:
    """A document's generated blocks: ``(source, body)``, source ``FILE#SECTION`` or ``FILE``."""
    return [(m[2], m[3].strip("\n")) for m in _BLOCK.finditer(doc)]


def section_text(root: Path, source: str) -> str:
    """What a block of ``source`` holds: the named section of a generated file (``FILE#NAME``);
    exits with one line naming the file or the section when it has none."""
    path, _, name = source.partition("#")
    if not (root / path).is_file():
        sys.exit(f"findings: {path}: missing (a generated block's source)")
    found = sections_of((root / path).read_text())
    if name not in found:
        sys.exit(f"findings: {path}: no section {name!r} (has {', '.join(found) or 'none'})")
    return found[name]


def refresh(doc: str, root: Path) -> str:
    """``doc`` with every ``FILE#SECTION`` block's body replaced by that section today (blocks
    of a whole file are left as they are)."""

    def fill(m: re.Match) -> str:
        if "#" not in m[2]:
            return m[0]
        return f"{m[1]}\n{section_text(root, m[2])}\n{m[4]}"

    return _BLOCK.sub(fill, doc)
