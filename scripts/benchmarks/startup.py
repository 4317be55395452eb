"""Start-up of ``bentoml serve``, trees side by side: ``python -m scripts.benchmarks.startup``.

python -m scripts.benchmarks.startup [--rounds N] [--floor] [TREE ...]

Serves each tree (a checkout of the bundle; this one by default) in turn, and with
``--floor`` the bundle's process layout with none of its code
(scripts/benchmarks/startup_floor.py), alternating over the rounds (the machine drifts by a
quarter within minutes, so only alternating runs compare), each from a BENTOML_HOME of its
own sharing the current model store's models. It times from the spawn of ``bentoml serve``
to ``/readyz``'s first 200 and to the first 200 of ``POST /predict_credit`` (what
scripts/benchmarks/first_answer.py counts as "the server answers"), polling every 0.1 s,
and prints each round and the medians. Run it under the servers' lock.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from scripts.sample_data.requests import HEALTHY
from tests.support.server import ROOT, free_port, home_sharing_models, start, stop, store_models

POLL_S = 0.1
TIMEOUT_S = 120.0


def first_200(send: httpx.Client, method: str, url: str, **request: object) -> bool:
    try:
        return send.request(method, url, timeout=5, **request).status_code == 200  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


FLOOR = "floor"  # in place of a tree: scripts/benchmarks/startup_floor.py, from this tree


def time_start(tree: Path | str, scratch: Path) -> tuple[float, float]:
    """Seconds from spawning ``bentoml serve`` in ``tree`` (or of :data:`FLOOR`) to /readyz
    200 and to an answer."""
    home = home_sharing_models(scratch / "home", store_models())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"BENTOML_HOME": str(home)}
    log = scratch / "serve.log"
    started = time.monotonic()
    if tree == FLOOR:
        process = start(port, log, env, service="scripts.benchmarks.startup_floor:Floor")
    else:
        process = start(port, log, env, cwd=Path(tree))
    ready = answered = None
    try:
        with httpx.Client() as send:
            while time.monotonic() - started < TIMEOUT_S:
                if process.poll() is not None:
                    raise RuntimeError(f"{tree}: the server exited with {process.returncode}")
                if ready is None and first_200(send, "GET", f"{url}/readyz"):
                    ready = time.monotonic() - started
                if answered is None and first_200(
                    send, "POST", f"{url}/predict_credit", json=HEALTHY
                ):
                    answered = time.monotonic() - started
                if ready is not None and answered is not None:
                    return ready, answered
                time.sleep(POLL_S)
        raise TimeoutError(f"{tree}: not ready within {TIMEOUT_S:.0f} s")
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="start the floor too")
    arguments = parser.parse_args()
    trees: list[Path | str] = [*arguments.trees, *([FLOOR] if arguments.floor else [])]
    timings: dict[Path | str, list[tuple[float, float]]] = {tree: [] for tree in trees}
    for round_ in range(arguments.rounds):
        for tree in trees:
            with tempfile.TemporaryDirectory(prefix="startup-") as scratch:
                ready, answered = time_start(tree, Path(scratch))
            timings[tree].append((ready, answered))
            print(f"round {round_ + 1} {tree}: ready {ready:.2f} s, answered {answered:.2f} s")
    for tree, runs in timings.items():
        ready = statistics.median(r for r, _ in runs)
        answered = statistics.median(a for _, a in runs)
        print(f"median {tree}: ready {ready:.2f} s, answered {answered:.2f} s ({len(runs)} runs)")


if __name__ == "__main__":
    main()
