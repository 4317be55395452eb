"""Sustained load over every endpoint through the composed service: every answer must be a
correct 200. Loopback only, bounded in time.

    python -m scripts.benchmarks.load_test [--clients 64] [--seconds 60] [--write]
"""

from __future__ import annotations

import argparse
import asyncio

from scripts.benchmarks.reliability import append_report, outcome_table, own_server
from scripts.benchmarks.traffic import default_mix, drive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--write", action="store_true", help="append to docs/RELIABILITY.md")
    args = parser.parse_args()

    with own_server() as server:
        tally = asyncio.run(drive(server.url, default_mix(), args.clients, seconds=args.seconds))
    body = (
        f"{args.clients} clients for {tally.seconds:.0f} s: {tally.requests} requests "
        f"({tally.requests / tally.seconds:.0f}/s), {tally.errors} not a correct 200.\n\n"
        + outcome_table(tally)
    )
    print(body)
    if args.write:
        append_report("Load", body)
    raise SystemExit(1 if tally.errors else 0)


if __name__ == "__main__":
    main()
