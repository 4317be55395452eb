"""The process layout: one front service that never loads torch, one process per runner."""

from __future__ import annotations

import psutil

from scripts.benchmarks.reliability import FRONT, RUNNERS, server_processes
from tests.support.server import Server


def loads_torch(process: psutil.Process) -> bool:
    return any("libtorch" in mapping.path for mapping in process.memory_maps())


def test_one_process_per_runner_and_only_runners_load_torch(server: Server) -> None:
    processes = server_processes(server.process.pid)
    assert set(processes) == {"arbiter", FRONT, *RUNNERS}
    # The front decodes, validates and routes; torch there would cost ~250 MB for nothing.
    assert not loads_torch(processes[FRONT])
    assert all(loads_torch(processes[runner]) for runner in RUNNERS)
