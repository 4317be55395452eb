"""How long a newcomer waits: ``python -m scripts.benchmarks.first_answer [--write]``.

Clones this checkout's HEAD into a temporary directory and runs the README's first command,
``make serve``, there, as on a fresh machine: no virtual environment, an empty model store
(``BENTOML_HOME``) and an empty uv cache (packages are downloaded, as a newcomer's are). It
polls ``POST /predict_credit`` until the first 200 and reports the time of each phase, read
off the output's first line of each (install, training, start-up). ``--write`` puts the
table in docs/PERFORMANCE-first-answer.md.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

from scripts.benchmarks import goals
from scripts.benchmarks.goals import Goal
from scripts.sample_data.requests import HEALTHY
from tests.support.server import ROOT

REPORT = ROOT / "docs" / "PERFORMANCE-first-answer.md"
GOAL_S = 120.0
TRAINING_GOAL_S = 30.0
READY_GOAL_S = 6.0
# The first line of each phase in `make serve`'s output.
PHASES = {
    "install the serving packages (uv)": "pip install --quiet --disable-pip-version-check uv",
    "train the default models": "scripts.train.defaults",
    "start the server": "bentoml serve",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(timeout_s: float = 900) -> dict[str, float]:
    """Seconds from the start of ``make serve`` to each phase and to the first answer."""
    with tempfile.TemporaryDirectory(prefix="first-answer-") as scratch:
        clone = Path(scratch) / "model_bundle"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        port = free_port()
        env = {
            **os.environ,
            "BENTOML_HOME": str(Path(scratch) / "bentoml"),
            "UV_CACHE_DIR": str(Path(scratch) / "uv-cache"),
        }
        env.pop("VIRTUAL_ENV", None)
        started = time.monotonic()
        marks: dict[str, float] = {"load average at the start": os.getloadavg()[0]}
        make = subprocess.Popen(
            ["make", "serve", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def read_output() -> None:
            assert make.stdout is not None
            for line in make.stdout:
                for phase, marker in PHASES.items():
                    if marker in line and phase not in marks:
                        marks[phase] = time.monotonic() - started

        threading.Thread(target=read_output, daemon=True).start()
        try:
            while time.monotonic() - started < timeout_s:
                if make.poll() is not None:
                    raise RuntimeError(f"make serve exited with {make.returncode}")
                try:
                    answer = httpx.post(
                        f"http://127.0.0.1:{port}/predict_credit", json=HEALTHY, timeout=5
                    )
                    if answer.status_code == 200:
                        marks["first answer"] = time.monotonic() - started
                        return marks
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            raise TimeoutError(f"no answer within {timeout_s:.0f} s")
        finally:
            os.killpg(make.pid, 15)
            make.wait(timeout=60)


def goal_rows(marks: dict[str, float]) -> list[Goal]:
    """The first answer within two minutes; the default training within 30 s; the server
    answering within 6 s of its start (on a fresh clone, the stricter form of "ready")."""
    total = marks["first answer"]
    rows = [
        Goal(
            f"first answer within {GOAL_S:.0f} s of `make serve`",
            f"{total:.0f} s",
            total <= GOAL_S,
        )
    ]
    training, serving = marks.get("train the default models"), marks.get("start the server")
    if training is not None and serving is not None:
        took = serving - training
        rows.append(
            Goal(
                f"default training within {TRAINING_GOAL_S:.0f} s",
                f"{took:.0f} s",
                took <= TRAINING_GOAL_S,
            )
        )
    if serving is not None:
        took = total - serving
        rows.append(
            Goal(
                f"the server answers within {READY_GOAL_S:.0f} s of `bentoml serve`",
                f"{took:.1f} s",
                took <= READY_GOAL_S,
            )
        )
    return rows


def report(marks: dict[str, float]) -> str:
    order = [*PHASES, "first answer"]
    rows = [f"| {phase} | {marks[phase]:.0f} s |" for phase in order if phase in marks]
    load = marks["load average at the start"]
    return "\n".join(
        [
            "# First answer on a fresh clone",
            "",
            f"`python -m scripts.benchmarks.first_answer --write`, {date.today().isoformat()}, "
            f"on a {os.cpu_count()}-core machine: `make serve` in a fresh clone, no virtual "
            "environment, an empty model store and an empty uv cache (torch from the local "
            "wheel where PIP_FIND_LINKS names one). Times from the start of `make serve`; "
            f"the machine's 1-minute load average at the start: {load:.1f} (on an idle machine, "
            "0; each unit of load slows training and start-up).",
            "",
            "| phase starts | at |",
            "|---|---|",
            *rows,
            "",
            *goals.markdown(goal_rows(marks)),
            "",
        ]
    )


def main() -> None:
    goals.page_command(__doc__, REPORT, lambda: report(measure()))


if __name__ == "__main__":
    main()
