"""How long the suite takes from a clean clone: ``python -m scripts.benchmarks.suite [--write]``.

Clones this checkout's HEAD into a temporary directory and runs there what CI runs,
``bash .ci/run`` (the README's ``make test``: the virtual environment created, the default
models trained, lint, every test), then, in the same clone, the fast in-process set a
developer reruns (``make fast``, the default models cached by then). Reports both
times against their goals and the slowest tests of the whole run; ``--write`` puts the
report in docs/PERFORMANCE-suite.md. Takes as long as the suite: run it on a quiet machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from scripts.benchmarks import goals
from scripts.benchmarks.goals import Goal
from tests.support.server import ROOT

REPORT = ROOT / "docs" / "PERFORMANCE-suite.md"
WHOLE_GOAL_S = 600.0
FAST_GOAL_S = 60.0
SLOWEST_SHOWN = 15
# pytest's --durations lines: "12.34s call     tests/test_x.py::test_y"
DURATION = re.compile(r"^(\d+\.\d+)s (setup|call|teardown)\s+(\S+)")


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Seconds ``command`` took and its output; raises when it fails."""
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-5000:]}{done.stderr}")
    return took, done.stdout


def summary(output: str) -> str:
    """pytest's last line of each run, joined: "407 passed in 70.1s; 264 passed, 3 warnings in
    534.5s" (``make test`` runs pytest twice: the fast tests, then the end-to-end ones)."""
    found = [
        line.strip("= ")
        for line in output.splitlines()
        if re.search(r"(passed|failed).* in ", line)
    ]
    return "; ".join(found) if found else "no summary"


def slowest(output: str) -> list[tuple[float, str, str]]:
    found = [m.groups() for line in output.splitlines() if (m := DURATION.match(line))]
    return sorted(((float(s), when, test) for s, when, test in found), reverse=True)


def measure() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="suite-") as scratch:
        clone = Path(scratch) / "model_bundle"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        load = os.getloadavg()[0]
        whole_s, whole = timed(["bash", ".ci/run"], clone)
        fast_s, fast = timed(["make", "fast"], clone)
    return {
        "commit": commit,
        "load": load,
        "whole_s": whole_s,
        "whole": summary(whole),
        "fast_s": fast_s,
        "fast": summary(fast),
        "slowest": slowest(whole)[:SLOWEST_SHOWN],
    }


def goal_rows(figures: dict) -> list[Goal]:
    whole, fast = figures["whole_s"], figures["fast_s"]
    return [
        Goal(
            f"clean-clone `.ci/run` within {WHOLE_GOAL_S / 60:.0f} minutes",
            f"{whole / 60:.1f} min ({figures['whole']})",
            whole <= WHOLE_GOAL_S,
        ),
        Goal(
            f"the fast in-process set within {FAST_GOAL_S:.0f} s (models cached)",
            f"{fast:.0f} s ({figures['fast']})",
            fast <= FAST_GOAL_S,
        ),
    ]


def report(figures: dict) -> str:
    slow = [f"| {test} | {when} | {seconds:.0f} s |" for seconds, when, test in figures["slowest"]]
    return "\n".join(
        [
            "# The suite's time",
            "",
            f"`python -m scripts.benchmarks.suite --write`, {date.today().isoformat()}, commit "
            f"{figures['commit']}, on a {os.cpu_count()}-core machine whose 1-minute load average "
            f"was {figures['load']:.1f} at the start: a clean clone running `bash .ci/run` "
            "(virtual environment, training of the default models, lint, every test; the "
            "container image from the engine's cache where this machine built it before), then "
            "`make fast` in the same clone.",
            "",
            *goals.markdown(goal_rows(figures)),
            "",
            "The slowest steps of the whole run:",
            "",
            "| test | step | time |",
            "|---|---|---|",
            *slow,
            "",
        ]
    )


def main() -> None:
    goals.page_command(__doc__, REPORT, lambda: report(measure()))


if __name__ == "__main__":
    main()
