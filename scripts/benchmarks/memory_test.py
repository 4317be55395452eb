"""Does resident memory grow under sustained load? Loopback only.

Sends the whole mix in steps of ``--step`` requests and reads every server process's
resident set after each step; the target: after ``--total`` requests each process is within
10% of what it was after ``--baseline`` requests.

    python -m scripts.benchmarks.memory_test [--total 50000] [--baseline 5000]
        [--env NAME=VALUE ...] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from scripts.benchmarks.reliability import (
    append_report,
    outcome_table,
    own_server,
    resident_mib,
    server_processes,
    table,
)
from scripts.benchmarks.traffic import OK, Tally, default_mix, drive

LIMIT = 0.10  # growth allowed between the baseline and the end


def measure(
    total: int, baseline: int, step: int, clients: int, env: dict[str, str]
) -> tuple[list[tuple[int, dict[str, float]]], Tally]:
    """[(requests so far, resident MiB per process)] after each step, and the tally."""
    calls, tally, samples = default_mix(), Tally(), []
    with own_server(env) as server:
        processes = server_processes(server.process.pid)
        targets = sorted({baseline, *range(step, total + 1, step), total})
        for target in targets:
            asyncio.run(drive(server.url, calls, clients, requests=target, tally=tally))
            samples.append((tally.requests, resident_mib(processes)))
            print(
                f"{tally.requests} requests: "
                + ", ".join(f"{name} {mib:.0f}" for name, mib in samples[-1][1].items())
                + f"; errors so far {dict(tally.by_outcome - Counter({OK: tally.requests}))}",
                flush=True,
            )
    return samples, tally


def growth_table(samples: list[tuple[int, dict[str, float]]], baseline: int) -> tuple[str, bool]:
    """Per process: MiB after the baseline, at the peak and at the end, growth; target met?"""
    start = next(mib for n, mib in samples if n >= baseline)
    end = samples[-1][1]
    rows, met = [], True
    for name in start:
        growth = end[name] / start[name] - 1
        met &= growth <= LIMIT
        peak = max(mib[name] for _, mib in samples)
        rows.append(
            [name, f"{start[name]:.0f}", f"{peak:.0f}", f"{end[name]:.0f}", f"{growth:+.1%}"]
        )
    header = ["process", f"after {baseline} (MiB)", "peak", f"after {samples[-1][0]}", "growth"]
    return table(header, rows), met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=50_000)
    parser.add_argument("--baseline", type=int, default=5_000)
    parser.add_argument("--step", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for bentoml serve")
    parser.add_argument("--write", action="store_true", help="append to docs/RELIABILITY.md")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)

    samples, tally = measure(args.total, args.baseline, args.step, args.clients, env)
    growth, met = growth_table(samples, args.baseline)
    steps = table(
        ["requests", *samples[0][1]],
        [[n, *(f"{mib:.0f}" for mib in m.values())] for n, m in samples],
    )
    body = (
        f"{tally.requests} requests from {args.clients} clients, {tally.errors} not a correct "
        f"200; server environment: {env or 'default'}. Resident memory (RSS, MiB); target "
        f"within {LIMIT:.0%} of the baseline: {'met' if met else 'NOT met'}.\n\n"
        f"{growth}\n\nAfter each step:\n\n{steps}\n\n{outcome_table(tally)}"
    )
    print(body)
    if args.write:
        append_report("Memory", body)


if __name__ == "__main__":
    main()
