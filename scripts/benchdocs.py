"""Writes a script's table into docs/BENCHMARKS.md between its own markers (shared by the scripts)."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"


def update_block(name: str, title: str, md: str, path: Path = DOCS) -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->``, or append a
    ``## title`` section with those markers when the file has none yet."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{md}\n{end}"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n" + block + "\n"
    path.write_text(text)
