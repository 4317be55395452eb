"""Versions changed under load: ``python -m scripts.benchmarks.versions [--write]``.

Starts the bundle (its own BENTOML_HOME sharing this store's models, its own state
directory, admin keys on), stores a second credit version, and runs ``--clients`` (64)
clients posting ``predict_credit`` on loopback through: load a candidate (shadow), canary
30 % until ``--canary-requests`` (2,000) answers, promote, roll back. Reports every status
(the goal: no non-2xx), the canary's observed share, the time from each promote and
rollback call to the first answer by the new version, and the cost of a shadow on
throughput. ``--write`` puts the table at the end of docs/VERSIONS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from models.tabular.contract import CREDIT_TASK
from scripts.sample_data.requests import HEALTHY
from scripts.train.datasets import credit_sample
from scripts.train.tabular import TrainingConfig, train_tabular
from tests.support.server import ROOT, Server, separate_server, store_models

REPORT = ROOT / "docs" / "VERSIONS.md"
HEADING = "## Measured"
KEY = "bench-admin-key"


@dataclasses.dataclass
class Answers:
    """Every answer: (arrival time, status, version named)."""

    seen: list[tuple[float, int, str | None]] = dataclasses.field(default_factory=list)

    def after(self, moment: float) -> list[tuple[float, int, str | None]]:
        return [answer for answer in self.seen if answer[0] > moment]


async def clients(url: str, count: int, answers: Answers, running: asyncio.Event) -> None:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client() -> None:
            while running.is_set():
                answer = await http.post("/predict_credit", json=HEALTHY)
                model = answer.json().get("model") if answer.status_code == 200 else None
                answers.seen.append((time.monotonic(), answer.status_code, model))

        await asyncio.gather(*(client() for _ in range(count)))


async def admin(http: httpx.AsyncClient, path: str, **body: object) -> float:
    """POST an admin call; the time it returned."""
    answer = await http.post(f"/admin/models/credit_health/{path}", json=body, timeout=120)
    answer.raise_for_status()
    return time.monotonic()


def first(answers: Answers, since: float, tag: str) -> float:
    return next(at for at, _, model in answers.after(since) if model == tag) - since


async def scenario(
    server: Server, candidate: str, count: int, canary_requests: int, phase_s: float = 5.0
) -> dict:
    answers, running = Answers(), asyncio.Event()
    running.set()
    load = asyncio.create_task(clients(server.url, count, answers, running))
    headers = {"Authorization": f"Bearer {KEY}"}
    figures: dict = {}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        await asyncio.sleep(phase_s * 0.6)
        plain_from = time.monotonic()
        await asyncio.sleep(phase_s)
        plain = len(answers.after(plain_from)) / (time.monotonic() - plain_from)

        started = time.monotonic()
        loaded = await admin(http, "candidate", tag=candidate, mode="shadow")
        figures["load_s"] = loaded - started
        shadow_from = time.monotonic()
        await asyncio.sleep(phase_s)
        shadowed = len(answers.after(shadow_from)) / (time.monotonic() - shadow_from)
        figures["throughput"] = (plain, shadowed)

        canary_from = await admin(http, "share", share=30, mode="canary")
        while len(answers.after(canary_from)) < canary_requests:
            await asyncio.sleep(0.1)
        window = answers.after(canary_from)[:canary_requests]
        on_canary = sum(model == candidate for _, _, model in window)
        figures["canary"] = (on_canary, len(window))

        before_promote = time.monotonic()
        promoted = await admin(http, "promote")
        await asyncio.sleep(phase_s * 0.6)
        figures["promote"] = (promoted - before_promote, first(answers, promoted, candidate))
        tail = {model for _, _, model in answers.after(promoted + 0.5)}
        figures["after_promote"] = tail

        before_rollback = time.monotonic()
        rolled_back = await admin(http, "rollback")
        await asyncio.sleep(phase_s * 0.6)
        primary = answers.seen[0][2]
        assert primary is not None
        figures["rollback"] = (rolled_back - before_rollback, first(answers, rolled_back, primary))
        figures["after_rollback"] = {model for _, _, model in answers.after(rolled_back + 0.5)}
    running.clear()
    await load
    figures["statuses"] = Counter(status for _, status, _ in answers.seen)
    figures["total"] = len(answers.seen)
    return figures


def report(figures: dict, clients_count: int) -> str:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(figures["statuses"].items()))
    on_canary, window = figures["canary"]
    plain, shadowed = figures["throughput"]
    promote_call, promote_first = figures["promote"]
    rollback_call, rollback_first = figures["rollback"]
    return "\n".join(
        [
            f"{HEADING}",
            "",
            f"`python -m scripts.benchmarks.versions --write`, {time.strftime('%Y-%m-%d')}, "
            f"{clients_count} clients posting `predict_credit` on loopback (a Python load "
            "generator on the same 2-core machine, so throughput is the generator's as much as "
            "the server's).",
            "",
            "| what | measured |",
            "|---|---|",
            f"| requests, by status | {figures['total']:,} ({statuses}) |",
            f"| load + warm up a candidate (the admin call) | {figures['load_s'] * 1000:.0f} ms |",
            f"| canary 30 %: share observed over {window:,} requests | "
            f"{on_canary / window * 100:.1f} % |",
            f"| promote: the admin call / to the first answer by the new version after it | "
            f"{promote_call * 1000:.0f} ms / {promote_first * 1000:.0f} ms |",
            f"| versions answering from 0.5 s after promote | "
            f"{', '.join(sorted(map(str, figures['after_promote'])))} |",
            f"| rollback: the admin call / to the first answer by the old primary | "
            f"{rollback_call * 1000:.0f} ms / {rollback_first * 1000:.0f} ms |",
            f"| versions answering from 0.5 s after rollback | "
            f"{', '.join(sorted(map(str, figures['after_rollback'])))} |",
            f"| throughput without / with a shadow | {plain:.0f} / {shadowed:.0f} requests/s |",
            "",
        ]
    )


def measure(clients_count: int, canary_requests: int, phase_s: float = 5.0) -> tuple[dict, str]:
    """Store a candidate, serve the bundle, run the scenario: its figures and report."""
    task = dataclasses.replace(CREDIT_TASK, name="credit_health_bench_candidate")
    candidate = train_tabular(task, credit_sample(rows=600), TrainingConfig(epochs=2), "bench")
    with tempfile.TemporaryDirectory(prefix="versions-bench-") as directory:
        env = {
            "MODEL_BUNDLE_ADMIN_KEYS": KEY,
            "MODEL_BUNDLE_STATE_DIR": str(Path(directory) / "state"),
            "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS": str(max(128, 2 * clients_count)),
        }
        with separate_server(Path(directory), store_models(), env) as server:
            figures = asyncio.run(
                scenario(server, candidate, clients_count, canary_requests, phase_s)
            )
    figures["candidate"] = candidate
    return figures, report(figures, clients_count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--canary-requests", type=int, default=2000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    _, text = measure(args.clients, args.canary_requests)
    print(text)
    if args.write:
        page = REPORT.read_text()
        kept = page.split(f"\n{HEADING}\n")[0].rstrip("\n")
        REPORT.write_text(f"{kept}\n\n{text}")


if __name__ == "__main__":
    main()
