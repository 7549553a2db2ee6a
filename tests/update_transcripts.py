"""Rewrite the console transcripts of README.md and docs/ with what the commands print now.

A maintainer's tool, not a test: after a change that legitimately changes printed output
(an iteration count, the last digit of a residual), run

    python -m tests.update_transcripts [PAGE ...]

then read ``git diff`` before committing: every changed line is a claim the docs now make.
It runs each page exactly as ``tests/test_transcripts.py`` does (same working directory,
same in-process CLI) and replaces each ``$ command``'s documented output, keeping a
documented ``[exit N]`` line (with the status it exits with now) and the blank lines that
followed the output.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.test_transcripts import PAGES, ROOT, Session, _lines, _run_order


def update(page: Path) -> bool:
    """Rewrite one page in place; True when its text changed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
        session = Session(work)
        edits = []  # (first line index, end line index, new lines), 0-based, end exclusive
        for block in _run_order(page):
            if block.file is not None:
                (work / block.file).write_text(block.text, encoding="utf-8")
                continue
            steps = block.steps()
            end_of_block = block.line + len(block.text.splitlines())  # index of the fence
            for k, step in enumerate(steps):
                got = _lines(session.run(step.command))
                start = step.line  # the line after "$ command" (0-based index)
                stop = steps[k + 1].line - 1 if k + 1 < len(steps) else end_of_block
                old = lines[start:stop]
                blank_tail = len(old) - len(_rstrip_blank(list(old)))
                new = list(got)
                if step.status is not None:
                    new.append(f"[exit {session.status}]")
                edits.append((start, stop, new + [""] * blank_tail))
    for start, stop, new in reversed(edits):
        lines[start:stop] = new
    text = "\n".join(lines) + "\n"
    changed = text != page.read_text(encoding="utf-8")
    if changed:
        page.write_text(text, encoding="utf-8")
    return changed


def _rstrip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def main(argv: list[str]) -> int:
    pages = [Path(a).resolve() for a in argv] or PAGES
    for page in pages:
        if update(page):
            print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
