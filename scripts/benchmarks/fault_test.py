"""Faults under load, loopback only, bounded in time.

1. ``kill -9`` each runner in turn while clients send the whole mix: how long until every
   endpoint answers correctly again, how many requests failed (against how many were in
   flight at the kill), and whether ``/readyz`` reported the outage (503) while it lasted.
2. SIGTERM to the server (its arbiter, as ``docker stop`` or Kubernetes do) under load: the
   requests in flight complete, new ones are refused, and the server exits in time.

    python -m scripts.benchmarks.fault_test [--runners CreditRunner ...] [--clients 16] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from scripts.benchmarks.reliability import (
    RUNNERS,
    append_report,
    outcome_table,
    own_server,
    server_processes,
    table,
)
from scripts.benchmarks.traffic import OK, Call, Tally, default_mix, drive
from tests.support.server import Server

WARM_UP_S = 2.0
RECOVERY_LIMIT_S = 60.0
STOP_LIMIT_S = 30.0
PROBE_EVERY_S = 0.2


@dataclass
class KillResult:
    runner: str
    tally: Tally
    in_flight_at_kill: int
    killed_at: float  # monotonic s, the clock the tally's start times are on
    recovered_s: float  # from the kill to every endpoint answering correctly
    readiness: Counter[int]  # /readyz statuses seen until then
    readiness_probe_s: float  # longest /readyz answer while the runner was down

    @property
    def failed(self) -> int:
        return self.tally.errors

    @property
    def reported(self) -> bool:
        return self.readiness[503] > 0


async def every_endpoint_answers(http: httpx.AsyncClient, probes: list[Call]) -> bool:
    try:
        responses = await asyncio.gather(*(call.send(http) for call in probes))
    except httpx.HTTPError:
        return False
    return all(call.outcome(r) == OK for call, r in zip(probes, responses, strict=True))


def one_per_route(calls: list[Call]) -> list[Call]:
    return list({call.route: call for call in calls}.values())


async def kill_under_load(
    server: Server, runner: str, calls: list[Call], clients: int
) -> KillResult:
    """Kill ``runner`` with SIGKILL under load; probe until every endpoint answers again."""
    tally, stop = Tally(), asyncio.Event()
    load = asyncio.create_task(drive(server.url, calls, clients, tally=tally, stop=stop))
    await asyncio.sleep(WARM_UP_S)
    victim = server_processes(server.process.pid)[runner]
    in_flight = tally.in_flight
    killed = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    readiness: Counter[int] = Counter()
    slowest_probe = 0.0
    async with httpx.AsyncClient(base_url=server.url, timeout=RECOVERY_LIMIT_S) as http:
        while time.monotonic() - killed < RECOVERY_LIMIT_S:
            asked = time.monotonic()
            status = (await http.get("/readyz")).status_code
            slowest_probe = max(slowest_probe, time.monotonic() - asked)
            readiness[status] += 1
            if status == 200 and await every_endpoint_answers(http, one_per_route(calls)):
                break
            await asyncio.sleep(PROBE_EVERY_S)
        recovered = time.monotonic() - killed
    await asyncio.sleep(1)  # load against the restarted runner
    stop.set()
    await load
    return KillResult(runner, tally, in_flight, killed, recovered, readiness, slowest_probe)


@dataclass
class StopResult:
    tally_before: Tally  # requests sent before SIGTERM
    tally_after: Tally  # requests sent after it
    exit_s: float
    exit_code: int | None


async def terminate_under_load(server: Server, calls: list[Call], clients: int) -> StopResult:
    """SIGTERM to the arbiter under load; sort the answers by whether they were sent before."""
    tally, stop = Tally(), asyncio.Event()
    load = asyncio.create_task(drive(server.url, calls, clients, tally=tally, stop=stop))
    await asyncio.sleep(WARM_UP_S)
    terminated = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    while server.process.poll() is None and time.monotonic() - terminated < STOP_LIMIT_S:
        await asyncio.sleep(0.05)
    exit_s = time.monotonic() - terminated
    await asyncio.sleep(0.5)  # requests sent after the exit: refused
    stop.set()
    await load
    before, after = tally.split(terminated)
    return StopResult(before, after, exit_s, server.process.poll())


def kill_report(results: list[KillResult]) -> str:
    rows = [
        [
            r.runner,
            r.tally.requests,
            ", ".join(f"{n} x {o}" for o, n in sorted(r.tally.by_outcome.items()) if o != OK)
            or "none",
            r.in_flight_at_kill,
            f"{r.recovered_s:.1f}",
            ", ".join(f"{n} x {s}" for s, n in sorted(r.readiness.items())),
            "yes" if r.reported else "no",
        ]
        for r in results
    ]
    header = [
        "runner killed",
        "requests",
        "failed",
        "in flight at the kill",
        "recovered (s)",
        "/readyz until then",
        "outage reported",
    ]
    return table(header, rows)


def stop_report(result: StopResult) -> str:
    return (
        f"SIGTERM to the arbiter under load: exited after {result.exit_s:.1f} s "
        f"(code {result.exit_code}).\n\nSent before SIGTERM:\n\n"
        + outcome_table(result.tally_before)
        + "\n\nSent after SIGTERM:\n\n"
        + (outcome_table(result.tally_after) if result.tally_after.requests else "none")
    )


def run(
    runners: list[str], clients: int, sigterm: bool
) -> tuple[list[KillResult], StopResult | None]:
    calls = default_mix()
    with own_server() as server:
        kills = [asyncio.run(kill_under_load(server, name, calls, clients)) for name in runners]
        stopped = asyncio.run(terminate_under_load(server, calls, clients)) if sigterm else None
    return kills, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", nargs="*", default=list(RUNNERS), choices=RUNNERS)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--no-sigterm", action="store_true")
    parser.add_argument("--write", action="store_true", help="append to docs/RELIABILITY.md")
    args = parser.parse_args()

    kills, stopped = run(args.runners, args.clients, not args.no_sigterm)
    body = f"{args.clients} clients sending the whole mix.\n\n" + kill_report(kills)
    if stopped is not None:
        body += "\n\n" + stop_report(stopped)
    print(body)
    if args.write:
        append_report("Faults", body)


if __name__ == "__main__":
    main()
