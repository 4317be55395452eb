"""Every performance goal of the bundle, met or not, as its benchmark last measured it.

    python -m scripts.benchmarks.goals [--write]      (the end of ``make bench``)

A benchmark that measures goals builds them as :class:`Goal` values and prints them in its
page with :func:`markdown`. This command reads those tables back from the pages (the page
is the record: no second copy of a figure to go stale) and gathers them into one table,
each page with the date its last run was committed; a page that holds no goal table yet is
named with the command that measures it. ``--write`` puts the table in
docs/PERFORMANCE-goals.md. Each benchmark measures side by side in one run; rows of
different pages come from different runs, on loads each page states.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import ROOT

DOCS = ROOT / "docs"
REPORT = DOCS / "PERFORMANCE-goals.md"
HEADER = "| goal | measured | met |"

# Each page whose benchmark measures goals -> the command that measures them and writes it.
SOURCES: dict[str, str] = {
    "PERFORMANCE.md": "make bench",
    "PERFORMANCE-merging.md": "python -m scripts.benchmarks.merging --write",
    "PERFORMANCE-batch.md": "python -m scripts.benchmarks.batch --write",
    "PERFORMANCE-first-answer.md": "python -m scripts.benchmarks.first_answer --write",
    "PERFORMANCE-suite.md": "python -m scripts.benchmarks.suite --write",
    "MONITORING.md": "python -m scripts.benchmarks.monitoring --write",
}


@dataclass(frozen=True)
class Goal:
    """One goal as one run measured it: what it asks, the figure, and whether it was met
    (``note``: a qualifier such as "within noise")."""

    goal: str
    measured: str
    met: bool
    note: str = ""

    def row(self) -> str:
        verdict = ("yes" if self.met else "**no**") + (f" ({self.note})" if self.note else "")
        return f"| {self.goal} | {self.measured} | {verdict} |"


def markdown(goals: Sequence[Goal]) -> list[str]:
    """The goals as the Markdown table every page uses (and :func:`table_rows` reads)."""
    return [HEADER, "|---|---|---|", *(goal.row() for goal in goals)]


def table_rows(text: str) -> list[str]:
    """The rows of every goal table in a page's text."""
    rows, inside = [], False
    for line in text.splitlines():
        if line == HEADER:
            inside = True
        elif inside and line.startswith("|") and not line.startswith("|---"):
            rows.append(line)
        elif not line.startswith("|"):
            inside = False
    return rows


def met(row: str) -> bool:
    return row.rsplit("|", 2)[1].strip().startswith("yes")


def committed(page: Path) -> str:
    """The date the page was last committed (its run), or "not committed"."""
    done = subprocess.run(
        ["git", "log", "-1", "--format=%cs", "--", page.name],
        cwd=page.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "not committed"


def table(docs: Path = DOCS) -> str:
    """Every page's goal rows under the page's name, with how many were met."""
    lines = [
        "# Performance goals",
        "",
        "Every goal as its benchmark last measured it, gathered from the pages below by "
        "`python -m scripts.benchmarks.goals --write` (the end of `make bench`). Each "
        "benchmark measures side by side in one run, and its page says on what machine and "
        "load; rows of different pages come from different runs.",
    ]
    for page, command in SOURCES.items():
        path = docs / page
        rows = table_rows(path.read_text()) if path.exists() else []
        lines += ["", f"## [{page}]({page})", ""]
        if not rows:
            lines.append(f"No goal table yet: `{command}` measures its goals.")
            continue
        lines += [
            f"`{command}`, committed {committed(path)}: {sum(map(met, rows))} of {len(rows)} met.",
            "",
            HEADER,
            "|---|---|---|",
            *rows,
        ]
    return "\n".join(lines) + "\n"


def page_command(description: str, page: Path, make: Callable[[], str]) -> None:
    """The command line of a benchmark that measures one page: ``make()`` builds its text,
    which is printed, and written to ``page`` with ``--write``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {page.name}")
    args = parser.parse_args()
    text = make()
    print(text)
    if args.write:
        page.write_text(text)


def main() -> None:
    page_command(__doc__, REPORT, table)


if __name__ == "__main__":
    main()
