"""Side-by-side benchmark: the bundle against one FastAPI process serving the same models.

    python -m scripts.benchmarks.bench [--seconds 8] [--write]      (make bench)

Starts the bundle, the baseline (scripts/baseline_server.py) and the stack's floor (a JSON
echo on the bundle's own BentoML stack, scripts/echo_service.py), then measures each
endpoint at 1 and 64 concurrent clients (images: 32), bundle and baseline back to back,
plus the batch endpoints with 100 items a request and the raw in-process model. Load comes
from ``wrk`` (Debian package) when it is installed, else from a Python client (marked: on 2
cores it becomes the bottleneck first). Bounded: every run lasts --seconds. With --write the
report goes to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil

from scripts.benchmarks import goals, load
from scripts.benchmarks.goals import Goal
from scripts.sample_data.requests import HEALTHY, SETOSA
from tests.support import server as serving

REPORT = serving.ROOT / "docs" / "PERFORMANCE.md"
# The bundle with batching off: what the batchable path is compared with at one client.
UNBATCHED = "bundle, batching off"
UNBATCHED_ENV = {"MODEL_BUNDLE_BATCHING": "off"}
BATCHED = "bundle, batching on"
AFTER_BURST = "bundle, after a burst"
LOW_LOAD_ROUNDS = 3
BOUNDARY = "benchboundary"


@dataclass(frozen=True)
class Workload:
    name: str
    route: str
    body: bytes
    content_type: str
    rows: int = 1

    @classmethod
    def json(cls, name: str, route: str, payload: object, rows: int = 1) -> Workload:
        return cls(name, route, json.dumps(payload).encode(), "application/json", rows)

    @classmethod
    def image(cls, name: str, route: str, jpeg: bytes) -> Workload:
        body = (
            (
                f"--{BOUNDARY}\r\n"
                'Content-Disposition: form-data; name="image"; filename="f.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + jpeg
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        return cls(name, route, body, f"multipart/form-data; boundary={BOUNDARY}")


@dataclass
class Run:
    server: str
    workload: Workload
    clients: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str
    batch: str = ""
    cpu: str = ""


def wrk(
    url: str, workload: Workload, clients: int, seconds: float
) -> tuple[float, float, float, str]:
    """requests/s, p50 ms, p99 ms, errors, from one wrk run."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "body").write_bytes(workload.body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.headers["Content-Type"] = "{workload.content_type}"\n'
            f'local f = io.open("{tmp}/body", "rb"); wrk.body = f:read("*a"); f:close()\n'
        )
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
                "--latency",
                "-s",
                str(script),
                f"{url}{workload.route}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout

    def latency(percent: str) -> float:
        value, unit = re.search(rf"{percent}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = [
        f"non-2xx {m.group(1)}" for m in re.finditer(r"Non-2xx or 3xx responses: (\d+)", output)
    ]
    errors += [f"socket {m.group(0)}" for m in re.finditer(r"Socket errors: .*", output)]
    return rate, latency("50"), latency("99"), ", ".join(errors) or "0"


def python_load(
    url: str, workload: Workload, clients: int, seconds: float
) -> tuple[float, float, float, str]:
    async def send(http: httpx.AsyncClient) -> httpx.Response:
        return await http.post(
            workload.route, content=workload.body, headers={"content-type": workload.content_type}
        )

    result = asyncio.run(load.run(url, send, clients, seconds))
    errors = {k: v for k, v in result.statuses.items() if k != "200"}
    return (
        result.requests_per_second,
        result.percentile_ms(50),
        result.percentile_ms(99),
        ", ".join(f"{k}: {v}" for k, v in errors.items()) or "0",
    )


def batch_counts(url: str) -> dict[str, tuple[float, float]]:
    """runner -> (requests merged, batches) from the adaptive_batch_size histogram."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: dict[str, list[float]] = {}
    for kind, index in (("sum", 0), ("count", 1)):
        for runner, value in re.findall(
            rf'adaptive_batch_size_{kind}{{[^}}]*runner_name="(\w+)"[^}}]*}} (\S+)', text
        ):
            counts.setdefault(runner, [0.0, 0.0])[index] += float(value)
    return {runner: (merged, batches) for runner, (merged, batches) in counts.items()}


def runner_requests(url: str) -> dict[str, dict[str, float]]:
    """runner -> requests its batchable methods answered, by kind: "batched" (to the
    adaptive batcher) and "unbatched" (past it, the ``*_unbatched`` twins)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: dict[str, dict[str, float]] = {}
    for endpoint, runner, value in re.findall(
        r'bentoml_service_request_total{[^}]*endpoint="/(\w+)"[^}]*service_name="(\w+Runner)"'
        r"[^}]*} (\S+)",
        text,
    ):
        if not re.fullmatch(r"(predict_proba|classify|rate)_\d+(_unbatched)?", endpoint):
            continue
        kind = "unbatched" if endpoint.endswith("_unbatched") else "batched"
        runner_counts = counts.setdefault(runner, {"batched": 0.0, "unbatched": 0.0})
        runner_counts[kind] += float(value)
    return counts


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def memory(processes: list[psutil.Process]) -> list[tuple[str, float, float]]:
    """(command, RSS MiB, PSS MiB): PSS shares the pages of libraries (torch) the processes
    map in common among them, so PSS adds up to what the processes really use together."""
    rows = []
    for process in processes:
        try:
            name = " ".join(process.cmdline()[-6:])[:70]
            info = process.memory_full_info()
            rows.append((name, info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20))
        except psutil.NoSuchProcess:
            continue
    return rows


def raw_model_rows_per_second(seconds: float) -> list[tuple[str, float]]:
    import torch

    from models.artifact import Artifact
    from models.tabular.contract import CREDIT_TASK
    from models.tabular.network import load_classifier

    torch.set_num_threads(1)
    classifier = load_classifier(Artifact.load(f"{CREDIT_TASK.name}:latest"), CREDIT_TASK)
    rows = []
    for batch in (1, 64):
        x = np.tile(np.array([list(HEALTHY.values())], np.float32), (batch, 1))
        rate = load.per_second(lambda x=x: classifier.predict_proba(x), seconds, batch)
        rows.append((f"credit model in-process, batch {batch}", rate))
    return rows


def workloads(tiny: bool) -> list[tuple[Workload, Workload | None, tuple[int, ...]]]:
    """(bundle workload, baseline counterpart, client counts)."""
    from models.artifact import Artifact
    from models.books.featurizer import BookFeaturizer
    from scripts.sample_data.mask import jpeg

    credit = Workload.json("predict_credit", "/predict_credit", HEALTHY)
    if tiny:
        return [(credit, credit, (1, 4))]
    featurizer = BookFeaturizer.load(Artifact.load("book_rating:latest").path)
    pair = {"user_id": int(featurizer.user_ids[0]), "isbn": str(featurizer.isbns[0])}
    iris = Workload.json("classify_iris", "/classify_iris", SETOSA)
    book = Workload.json("rate_book", "/rate_book", pair)
    image = Workload.image("classify_mask", "/classify_mask", jpeg())
    credit_batch = Workload.json(
        "predict_credit_batch (100 rows)", "/predict_credit_batch", {"items": [HEALTHY] * 100}, 100
    )
    books_batch = Workload.json(
        "rate_books (100 rows)", "/rate_books", {"items": [pair] * 100}, 100
    )
    return [
        (credit, credit, (1, 64)),
        (iris, iris, (1, 64)),
        (book, book, (1, 64)),
        (image, image, (1, 32)),
        (credit_batch, credit, (1, 64)),
        (books_batch, book, (1, 64)),
    ]


def start(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    if kind == "bundle":
        return serving.start(port, log)
    if kind == UNBATCHED:
        home = serving.home_sharing_models(log.parent / "unbatched-home", serving.store_models())
        return serving.start(port, log, env={"BENTOML_HOME": str(home), **UNBATCHED_ENV})
    if kind == "echo":
        # A BENTOML_HOME of its own: a server starting in the same home wipes the metrics
        # directory of every other server there (bentoml ensure_prometheus_dir).
        home = log.parent / "echo-home"
        return serving.start(
            port,
            log,
            env={"BENTOML_HOME": str(home)},
            service="scripts.benchmarks.echo_service:Echo",
        )
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "scripts.benchmarks.baseline_server", "--port", str(port)],
            cwd=serving.ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_all(
    seconds: float, tiny: bool = False, bundle_url: str | None = None, only: str | None = None
) -> str:
    from scripts.train.defaults import train_missing

    train_missing()
    measure = wrk if shutil.which("wrk") else python_load
    servers: dict[str, tuple[str, subprocess.Popen[bytes] | None, float]] = {}
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        for kind in ("bundle", "baseline", "echo", UNBATCHED):
            if kind == "bundle" and bundle_url:
                servers[kind] = (bundle_url, None, float("nan"))
                continue
            port = serving.free_port()
            process = start(kind, port, logs / f"{kind}.log")
            url = f"http://127.0.0.1:{port}"
            servers[kind] = (url, process, serving.wait_until_ready(url, process, 180))
        runs: list[Run] = []

        warmed: set[tuple[str, str]] = set()

        def measured(kind: str, workload: Workload, clients: int, label: str = "") -> Run:
            url, process, _ = servers[kind]
            if (kind, workload.name) not in warmed:  # a short burst first: caches, batcher
                measure(url, workload, 8, min(1.0, seconds))
                warmed.add((kind, workload.name))
            tree = process_tree(process.pid) if process else []
            batches, cpu = batch_counts(url) if kind == "bundle" else {}, cpu_seconds(tree)
            started = time.monotonic()
            rate, p50, p99, errors = measure(url, workload, clients, seconds)
            wall = time.monotonic() - started
            run = Run(label or kind, workload, clients, rate, p50, p99, errors)
            if tree:
                run.cpu = f"{(cpu_seconds(tree) - cpu) / wall:.2f} cores"
            if kind == "bundle":
                after = batch_counts(url)
                formed = []
                for runner, (merged, batched) in after.items():
                    merged_before, batched_before = batches.get(runner, (0.0, 0.0))
                    if batched > batched_before:
                        size = (merged - merged_before) / (batched - batched_before)
                        formed.append(f"{runner.removesuffix('Runner')} {size:.1f}")
                run.batch = ", ".join(formed)
            return run

        echo = Workload.json("echo (stack floor)", "/echo", HEALTHY)
        for clients in (1, 64) if not tiny else (1, 4):
            runs.append(measured("echo", echo, clients))
        plan = workloads(tiny)  # reads the book featuriser and makes a photo: once
        for bundle_workload, baseline_workload, counts in plan:
            if only and only not in bundle_workload.name:
                continue
            for clients in counts:
                runs.append(measured("bundle", bundle_workload, clients))
                if baseline_workload is not None:
                    runs.append(measured("baseline", baseline_workload, clients))
        # Low load: one client on the same call with batching off and on, alternating (the
        # machine's speed drifts), and right after a burst: the adaptive batcher must not
        # wait for company that is not coming.
        credit = plan[0][0]
        if not only or only in credit.name:
            for _ in range(LOW_LOAD_ROUNDS):
                runs.append(measured(UNBATCHED, credit, 1))
                runs.append(measured("bundle", credit, 1, BATCHED))
                measure(servers["bundle"][0], credit, 64, min(2.0, seconds))  # the burst
                time.sleep(0.2)  # the burst's last answers, so they are not counted below
                runs.append(measured("bundle", credit, 1, AFTER_BURST))
        raw = raw_model_rows_per_second(min(seconds, 2))
        memory_rows = [
            (kind, *row)
            for kind, (_, process, _) in servers.items()
            if process
            for row in memory(process_tree(process.pid))
        ]
    finally:
        for kind, (_, process, _) in servers.items():
            if process and kind != "bundle":
                serving.stop(process)
        # The bundle's total PSS once it is the only server left: PSS shares a library's
        # pages among every process mapping it, the other servers' too.
        bundle = servers.get("bundle", ("", None, 0.0))[1]
        bundle_pss = sum(pss for _, _, pss in memory(process_tree(bundle.pid))) if bundle else 0.0
        if bundle:
            serving.stop(bundle)
    # The servers' logs and homes go once the run has succeeded (a failure above leaves them
    # in place to read).
    shutil.rmtree(logs, ignore_errors=True)
    return report(runs, raw, memory_rows, servers, seconds, measure is wrk, bundle_pss)
    return report(runs, raw, memory_rows, servers, seconds, measure is wrk)


def report(
    runs: list[Run],
    raw: list[tuple[str, float]],
    memory_rows: list,
    servers: dict,
    seconds: float,
    used_wrk: bool,
    bundle_pss: float,
) -> str:
    lines = [
        "# Performance: the bundle against a plain FastAPI server",
        "",
        f"One run of `python -m scripts.benchmarks.bench --seconds {seconds:g}` on "
        f"{platform.machine()}, "
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU; "
        f"load from {'wrk (1 thread)' if used_wrk else 'a Python client (the bottleneck first)'} "
        f"on the same machine, load average {os.getloadavg()[0]:.1f} at the end. Bundle: "
        "`bentoml serve service:ModelBundle` (front + 4 runner processes, 1 torch thread each; "
        f"{UNBATCHED!r} is the same with MODEL_BUNDLE_BATCHING=off). Baseline: "
        "`scripts/benchmarks/baseline_server.py`, one uvicorn process, same artifacts and "
        "preprocessing, no batching, torch's default threads. Floor: "
        "`scripts/benchmarks/echo_service.py`, the bundle's "
        "BentoML stack (the front's configuration and middleware) answering its JSON input. "
        "All three on uvicorn with uvloop and httptools. Requests per batch: the requests each "
        "model call merged, from the runners' `/metrics` (calls that went past the batcher "
        "are not counted).",
        "",
        "| endpoint | server | clients | requests/s | rows/s | p50 ms | p99 ms | errors | "
        "requests per batch | CPU |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.workload.name} | {run.server} | {run.clients} | "
            f"{run.requests_per_second:.0f} | "
            f"{run.requests_per_second * run.workload.rows:.0f} | {run.p50_ms:.1f} | "
            f"{run.p99_ms:.1f} | {run.errors} | {run.batch} | {run.cpu} |"
        )
    lines += ["", "| reference | rows/s |", "|---|---|"]
    lines += [f"| {name} | {rate:.0f} |" for name, rate in raw]
    lines += ["", "| server | process | RSS MiB |", "|---|---|---|"]
    lines += [f"| {k} | `{name}` | {rss:.0f} |" for k, name, rss, _ in memory_rows]
    lines += ["", "| server | all processes, RSS MiB | seconds to ready |", "|---|---|---|"]
    for kind in servers:
        rss = sum(row[2] for row in memory_rows if row[0] == kind)
        lines.append(f"| {kind} | {rss:.0f} | {servers[kind][2]:.1f} |")
    lines += [
        "",
        "Targets. Low-load rows compare medians of the alternating runs. Memory: "
        "the PSS of the bundle's processes, measured once the other servers had stopped: "
        "each process's private pages plus its share of the pages it maps in common with the "
        "others (torch's libraries), so the figures add up to what the processes use "
        "together; the RSS sum above counts those shared pages once per process.",
        "",
        *goals.markdown(target_rows(runs, bundle_pss, servers["bundle"][2])),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def target_rows(runs: list[Run], bundle_pss_mib: float, ready_s: float) -> list[Goal]:
    """One goal per performance target this run measured."""

    def find(server: str, name: str, clients: int | None = None) -> Run | None:
        found = [r for r in runs if r.server == server and r.workload.name == name]
        if clients is not None:
            found = [r for r in found if r.clients == clients]
        return max(found, key=lambda r: r.clients) if found else None

    rows: list[Goal] = []
    floor = find("echo", "echo (stack floor)")
    for name in ("predict_credit", "classify_iris", "rate_book"):
        bundle, baseline = find("bundle", name), find("baseline", name)
        if bundle and baseline and floor:
            of_floor = bundle.requests_per_second / floor.requests_per_second
            of_baseline = bundle.requests_per_second / baseline.requests_per_second
            rows.append(
                Goal(
                    f"{name}, {bundle.clients} clients: >= 0.8 of the floor, >= 0.6x the baseline",
                    f"{of_floor:.2f} of the floor, {of_baseline:.2f}x the baseline",
                    of_floor >= 0.8 and of_baseline >= 0.6,
                )
            )
    for name, single in (
        ("predict_credit_batch (100 rows)", "predict_credit"),
        ("rate_books (100 rows)", "rate_book"),
    ):
        bundle, baseline = find("bundle", name), find("baseline", single)
        if bundle and baseline:
            times = bundle.requests_per_second * bundle.workload.rows / baseline.requests_per_second
            rows.append(
                Goal(
                    f"{name}, {bundle.clients} clients: >= 5x the baseline's rows/s",
                    f"{times:.1f}x",
                    times >= 5,
                )
            )
    bundle, baseline = find("bundle", "classify_mask"), find("baseline", "classify_mask")
    if bundle and baseline:
        times = bundle.requests_per_second / baseline.requests_per_second
        rows.append(
            Goal(
                f"classify_mask, {bundle.clients} clients: >= 1x the baseline",
                f"{times:.2f}x",
                times >= 1,
            )
        )
    for name in ("predict_credit", "classify_iris", "rate_book", "classify_mask"):
        bundle, baseline = find("bundle", name, 1), find("baseline", name, 1)
        if bundle and baseline:
            times = bundle.p50_ms / baseline.p50_ms
            rows.append(
                Goal(
                    f"{name}, 1 client: p50 <= 4x the baseline's",
                    f"{bundle.p50_ms:.1f} ms, {times:.1f}x",
                    times <= 4,
                )
            )

    def median_p50(server: str) -> float | None:
        found = [r.p50_ms for r in runs if r.server == server and r.clients == 1]
        return statistics.median(found) if found else None

    unbatched = median_p50(UNBATCHED)
    for label, when in ((BATCHED, ""), (AFTER_BURST, ", right after a burst")):
        batched = median_p50(label)
        if unbatched is not None and batched is not None:
            extra = batched - unbatched
            rows.append(
                Goal(
                    f"predict_credit, 1 client{when}: p50 <= 1 ms over batching off",
                    f"{batched:.1f} ms against {unbatched:.1f} ms ({extra:+.1f} ms)",
                    extra <= 1,
                )
            )
    failed = [r for r in runs if r.errors != "0"]
    rows.append(Goal("0 errors in every run", f"{len(failed)} runs with errors", not failed))
    if bundle_pss_mib:  # this run started the bundle
        rows.append(
            Goal(
                "bundle, all processes: < 1.5 GB",
                f"{bundle_pss_mib * 2**20 / 1e9:.2f} GB ({bundle_pss_mib:.0f} MiB) PSS",
                bundle_pss_mib * 2**20 < 1.5e9,
            )
        )
        ready = Goal("bundle ready within 6 s of start", f"{ready_s:.1f} s", ready_s <= 6)
        rows.append(ready)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--write", action="store_true", help=f"write {REPORT.name}")
    parser.add_argument("--only", help="just the workloads whose name contains this")
    args = parser.parse_args()
    text = run_all(args.seconds, only=args.only)
    if args.write:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(text)
