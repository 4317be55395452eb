"""The process layout: one front service that never loads torch, one process per runner."""

from __future__ import annotations

import psutil

from scripts.serving import Server

RUNNERS = ("CreditRunner", "IrisRunner", "BooksRunner", "MaskRunner")
FRONT = "model_bundle"


def services(server: Server) -> dict[str, psutil.Process]:
    """Service name -> its worker process, from the ``--service-name`` of each command line."""
    found = {}
    for child in psutil.Process(server.process.pid).children(recursive=True):
        command = child.cmdline()
        if "--service-name" in command:
            found[command[command.index("--service-name") + 1]] = child
    return found


def loads_torch(process: psutil.Process) -> bool:
    return any("libtorch" in mapping.path for mapping in process.memory_maps())


def test_one_process_per_runner_and_only_runners_load_torch(server: Server) -> None:
    workers = services(server)
    assert set(workers) == {FRONT, *RUNNERS}
    # The front decodes, validates and routes; torch there would cost ~250 MB for nothing.
    assert not loads_torch(workers[FRONT])
    assert all(loads_torch(workers[runner]) for runner in RUNNERS)
