"""What the reliability scripts share: a server of their own, its processes, and the report.

Each script (load_test, fault_test, memory_test) prints a Markdown table and, with
``--write``, appends it to docs/RELIABILITY.md under a dated heading with its command.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from scripts.benchmarks.traffic import OK, Tally
from service import ModelBundle
from tests.support.server import ROOT, Server, separate_server, store_models

REPORT = ROOT / "docs" / "RELIABILITY.md"
# The services of `bentoml serve service:ModelBundle`, by the names in their worker command
# lines: BentoML's list of the front's dependencies, not a second one.
RUNNERS = tuple(dependency.on.name for dependency in ModelBundle.dependencies.values())
FRONT = "ModelBundle"


@contextmanager
def own_server(env: dict[str, str] | None = None) -> Iterator[Server]:
    """The bundle in a temporary BENTOML_HOME sharing this store's models (so a ``make serve``
    running from the same store keeps its metrics directory), stopped on exit."""
    with (
        tempfile.TemporaryDirectory(prefix="reliability-") as directory,
        separate_server(Path(directory), store_models(), env) as running,
    ):
        try:
            yield running
        finally:
            report_problems(running.log_text())


def report_problems(log: str, shown: int = 10) -> None:
    """Print the server's WARNING and ERROR lines (its log goes with its directory)."""
    problems = [line for line in log.splitlines() if "[WARNING]" in line or "[ERROR]" in line]
    if problems:
        print(f"server log: {len(problems)} WARNING/ERROR lines, the first {shown}:")
        print("\n".join(line[:300] for line in problems[:shown]), flush=True)


def server_processes(arbiter: int) -> dict[str, psutil.Process]:
    """The live processes of a server: ``arbiter``, ``ModelBundle`` (the front) and each
    runner by class name. A killed worker is left out (a zombie until reaped)."""
    found = {"arbiter": psutil.Process(arbiter)}
    for child in found["arbiter"].children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(child.cmdline())
        except psutil.Error:  # exited between listing and reading
            continue
        for name in RUNNERS:
            if name in command:
                found[name] = child
                break
        else:
            if "_bentoml_impl.worker.service" in command:
                found[FRONT] = child
    return found


def resident_mib(processes: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: p.memory_info().rss / 2**20 for name, p in processes.items()}


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def outcome_table(tally: Tally) -> str:
    """Requests per route and outcome (``ok``, a status code, ``wrong answer``, a transport
    error), with the totals."""
    outcomes = sorted({outcome for _, outcome in tally.outcomes}, key=lambda o: (o != OK, o))
    routes = sorted({route for route, _ in tally.outcomes})
    rows = [
        [route, sum(tally.outcomes[route, o] for o in outcomes)]
        + [tally.outcomes[route, o] for o in outcomes]
        for route in routes
    ]
    totals = tally.by_outcome
    rows.append(["**all**", tally.requests] + [totals[o] for o in outcomes])
    return table(["route", "requests", *outcomes], rows)


def command_line() -> str:
    main = sys.modules["__main__"]
    module = main.__spec__.name if main.__spec__ else Path(sys.argv[0]).with_suffix("").name
    return "python -m " + " ".join([module, *sys.argv[1:]])


def append_report(title: str, body: str, path: Path = REPORT) -> None:
    """Append a dated section to docs/RELIABILITY.md (created with a preamble if missing)."""
    if not path.exists():
        path.write_text(
            "# Reliability runs\n\nAppended by `python -m scripts.benchmarks.load_test`, "
            "`scripts.benchmarks.fault_test` and `scripts.benchmarks.memory_test` with "
            "`--write`; each section is one run on the "
            "machine named in it.\n"
        )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{psutil.cpu_count()} cores, load average {psutil.getloadavg()[0]:.1f} at the end"
    with path.open("a") as report:
        report.write(f"\n## {title} ({when})\n\n`{command_line()}` ({machine})\n\n{body.strip()}\n")
