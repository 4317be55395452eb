"""Bundles measured side by side: each arm is one `bentoml serve` (a tree of the code, its
settings) in a BENTOML_HOME of its own sharing one model store, all running at once and
measured in alternation, round after round, so the machine's drift falls on every arm alike.

What the explanation and monitoring benchmarks compare with: the tree just before a feature
landed (a detached git worktree, made here when missing), this tree with a few lines edited
(the monitor's recording taken out), and the same tree under other settings. Load comes from
bench.py's ``wrk`` (or its Python client when wrk is missing).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

from scripts.benchmarks import bench
from tests.support import server as serving

K = TypeVar("K")

# Each workload: one client first (its p50, before any burst), then 64 (requests/s).
CLIENTS = (1, 64)


@dataclass(frozen=True)
class Arm:
    """What one arm serves: a tree (default: this one) and extra environment."""

    name: str
    tree: Path = serving.ROOT
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Figures:
    """One arm's figures on one workload at one client count, a value per round."""

    requests_per_second: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # CPU time all the arm's processes spent per answer: what each request costs, which
    # other work on the machine changes far less than it changes requests/s.
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.requests_per_second)

    @property
    def p50(self) -> float:
        return statistics.median(self.p50_ms)

    def rate_text(self) -> str:
        """The median requests/s and, with several rounds, their range: the noise to judge
        a difference by."""
        return spread(self.requests_per_second, "{:.0f}")

    def p50_text(self) -> str:
        return spread(self.p50_ms, "{:.2f}")

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    def cpu_text(self) -> str:
        return spread(self.cpu_ms, "{:.2f}")

    @property
    def error_text(self) -> str:
        """Errors over the rounds; wrk's socket timeouts (answers slower than its 2 s) are
        summed apart from the rest."""
        timeouts, other = 0, []
        for text in self.errors:
            for part in text.split(", socket ") if text != "0" else ():
                found = re.fullmatch(
                    r"(?:socket )?Socket errors: connect 0, read 0, write 0, timeout (\d+)", part
                )
                if found:
                    timeouts += int(found.group(1))
                else:
                    other.append(part)
        if timeouts:
            other.append(f"{timeouts} answers after wrk's 2 s timeout")
        return "; ".join(other) or "0"


def spread(values: Sequence[float], form: str) -> str:
    median = form.format(statistics.median(values))
    if len(values) < 2:
        return median
    return f"{median} ({form.format(min(values))}-{form.format(max(values))})"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=serving.ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def tree_before(paths: Sequence[str], where: Path | None = None) -> tuple[str, Path]:
    """(commit, checkout) of the tree just before the first commit that touched ``paths``:
    a detached worktree at ``where`` (default /tmp/model_bundle-before-<commit>), made when
    missing."""
    first = git("log", "--reverse", "--format=%H", "--", *paths).splitlines()[0]
    commit = git("rev-parse", "--short", f"{first}^")
    checkout = where or Path(tempfile.gettempdir()) / f"model_bundle-before-{commit}"
    if not (checkout / "service.py").exists():
        git("worktree", "add", "--detach", str(checkout), commit)
    return commit, checkout


def tree_edited(label: str, edits: Mapping[str, tuple[str, str]]) -> tuple[str, Path]:
    """(commit, checkout) of this tree's HEAD with textual ``edits`` applied (path -> (old,
    new); each old text must occur exactly once): a detached worktree under /tmp, made anew
    every time, for an arm that differs from this tree by a few lines only."""
    commit = git("rev-parse", "--short", "HEAD")
    checkout = Path(tempfile.gettempdir()) / f"model_bundle-{label}-{commit}"
    if checkout.exists():
        git("worktree", "remove", "--force", str(checkout))
    git("worktree", "add", "--detach", str(checkout), commit)
    for path, (old, new) in edits.items():
        source = checkout / path
        text = source.read_text()
        if text.count(old) != 1:
            raise RuntimeError(f"{path}: the text to replace does not occur exactly once")
        source.write_text(text.replace(old, new))
    return commit, checkout


@dataclass(frozen=True)
class Served:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def serving_arms(arms: Sequence[Arm], store: Path) -> Iterator[dict[str, Served]]:
    """Every arm served at once (by arm name), each in a BENTOML_HOME of its own sharing
    the model store ``store`` (``$BENTOML_HOME/models``); all stopped on exit."""
    logs = Path(tempfile.mkdtemp(prefix="bench-arms-"))
    urls: dict[str, Served] = {}
    with ExitStack() as stack:
        for number, arm in enumerate(arms):
            home = serving.home_sharing_models(logs / f"home-{number}", store)
            port = serving.free_port()
            env = {"BENTOML_HOME": str(home), **arm.env}
            process = serving.start(port, logs / f"arm-{number}.log", env, cwd=arm.tree)
            stack.callback(serving.stop, process)
            url = f"http://127.0.0.1:{port}"
            serving.wait_until_ready(url, process, 180)
            urls[arm.name] = Served(url, process)
        yield urls
    shutil.rmtree(logs, ignore_errors=True)


def served_in_blocks(
    arms: Sequence[Arm], store: Path, rounds: int, rounds_per_start: int
) -> Iterator[tuple[int, dict[str, Served]]]:
    """(rounds, served arms) for each block of at most ``rounds_per_start`` rounds, every
    arm started anew for each block, all arms of a block with one hash seed
    (PYTHONHASHSEED, the block's number). A process has a speed of its own: two servers of
    the same tree, measured in alternation for 8 rounds, differed by 3-4% in CPU per
    answer (memory layout, hash seeds), which pairing rounds cannot cancel when each arm
    is one process for the whole run. Fresh processes per block turn that bias into noise
    that the rounds average; the shared seed keeps a block's pairs alike."""
    for block, count in enumerate(block_sizes(rounds, rounds_per_start)):
        with serving_arms(seeded(arms, block + 1), store) as urls:
            yield count, urls


def block_sizes(rounds: int, rounds_per_start: int) -> list[int]:
    """Rounds in each block: ``rounds_per_start`` each, the last one the rest."""
    return [min(rounds_per_start, rounds - start) for start in range(0, rounds, rounds_per_start)]


def seeded(arms: Sequence[Arm], seed: int) -> list[Arm]:
    """The arms with one hash seed (an arm's own PYTHONHASHSEED, if it sets one, wins)."""
    return [replace(arm, env={"PYTHONHASHSEED": str(seed), **arm.env}) for arm in arms]


def extend(figures: dict[K, Figures], more: Mapping[K, Figures]) -> None:
    """``more``'s rounds after ``figures``' (the same keys, as each block measures them)."""
    for key, row in more.items():
        into = figures.setdefault(key, Figures())
        for column in fields(Figures):  # every list of figures, one value per round
            getattr(into, column.name).extend(getattr(row, column.name))


def schedule(
    names: Sequence[str], workloads: Sequence[str], rounds: int, clients: Sequence[int] = CLIENTS
) -> Iterator[tuple[int, str, int, str]]:
    """(round, workload, clients, arm) in the order they are measured: in each round, each
    workload at each client count on every arm in turn, so the arms' figures of one round are
    seconds apart (a pair the machine's drift hardly separates); the arms' order reverses
    every round, so neither always goes first."""
    for number in range(rounds):
        order = list(names) if number % 2 == 0 else list(names)[::-1]
        for workload in workloads:
            for count in clients:
                for arm in order:
                    yield number, workload, count, arm


def alternate(
    urls: dict[str, Served],
    workloads: Sequence[bench.Workload],
    rounds: int,
    seconds: float,
    clients: Sequence[int] = CLIENTS,
) -> dict[tuple[str, str, int], Figures]:
    """(arm, workload, clients) -> figures, a value per round, measured in :func:`schedule`'s
    order: before an arm's first measurement of a workload a short warm-up burst, then each
    measurement for ``seconds``, with the CPU time the arm's processes spent. Many short
    rounds average the machine's drift better than few long ones."""
    measure = bench.wrk if shutil.which("wrk") else bench.python_load
    by_name = {workload.name: workload for workload in workloads}
    figures: dict[tuple[str, str, int], Figures] = {}
    for number, name, count, arm in schedule(list(urls), list(by_name), rounds, clients):
        warm = number == 0 and count == clients[0]
        row = figures.setdefault((arm, name, count), Figures())
        measure_into(row, measure, urls[arm], by_name[name], count, seconds, warm)
    return figures


def measure_into(
    row: Figures,
    measure: Callable[..., tuple[float, float, float, str]],
    served: Served,
    workload: bench.Workload,
    clients: int,
    seconds: float,
    warm: bool,
) -> None:
    """One measurement of ``served`` under ``workload`` for ``seconds``, appended to ``row``:
    requests/s, p50, errors and the CPU time its processes spent per answer; with ``warm``, a
    short warm-up burst first."""
    processes = bench.process_tree(served.process.pid)
    if warm:
        measure(served.url, workload, 8, 1.0)  # caches, connections, the batcher
    cpu = bench.cpu_seconds(processes)
    started = time.monotonic()
    rate, p50, _, errors = measure(served.url, workload, clients, seconds)
    answers = max(1.0, rate * (time.monotonic() - started))
    row.requests_per_second.append(rate)
    row.p50_ms.append(p50)
    row.errors.append(errors)
    row.cpu_ms.append((bench.cpu_seconds(processes) - cpu) * 1000 / answers)


@dataclass(frozen=True)
class Paired:
    """One arm against another from their rounds taken pairwise (round by round, measured
    seconds apart): the median change and a distribution-free interval of it, which says
    whether the run can tell the change from the machine's drift."""

    changes: list[float]
    median: float
    low: float
    high: float
    coverage: float

    @classmethod
    def of(cls, changes: Sequence[float], coverage: float = 0.9) -> Paired:
        """The median of ``changes`` and the narrowest interval between order statistics,
        symmetric in rank, that holds the true median with at least ``coverage`` (the
        binomial sign-test interval; with fewer than 5 rounds, the range)."""
        ordered, n = sorted(changes), len(changes)
        rank, held = 0, 1 - 2 / 2**n  # the range (x_1, x_n)
        for k in range(1, n // 2 + 1):
            outside = sum(math.comb(n, i) for i in range(k)) / 2**n  # P(fewer than k below)
            if 1 - 2 * outside < coverage:
                break
            rank, held = k - 1, 1 - 2 * outside
        return cls(
            list(changes), statistics.median(ordered), ordered[rank], ordered[-1 - rank], held
        )

    def straddles(self, threshold: float) -> bool:
        """The interval holds ``threshold``: this run cannot say which side the change is."""
        return self.low <= threshold <= self.high


def paired_ratio(now: Sequence[float], before: Sequence[float]) -> Paired:
    """Each round's ``now / before - 1``."""
    return Paired.of([a / b - 1 for a, b in zip(now, before, strict=True)])


def paired_difference(now: Sequence[float], before: Sequence[float]) -> Paired:
    """Each round's ``now - before``."""
    return Paired.of([a - b for a, b in zip(now, before, strict=True)])


def machine_load() -> str:
    """The load average: other work on the machine is noise these figures carry."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def load_tool() -> str:
    return "wrk (1 thread)" if shutil.which("wrk") else "a Python client (the bottleneck first)"


def plain_workloads() -> list[bench.Workload]:
    """predict_credit, classify_iris, rate_book, classify_mask: bench.py's bodies."""
    return [workload for workload, _, _ in bench.workloads(tiny=False)[:4]]
