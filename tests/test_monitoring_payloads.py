"""The payload log: a full queue drops and counts without blocking; rotation bounds disk."""

from __future__ import annotations

import json
import time
from pathlib import Path

from model_bundle.monitoring.payloads import PayloadLog


def record(i: int) -> dict:
    return {"model": "iris", "prediction_id": str(i), "inputs": {"x": i}, "outputs": {}}


def test_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, 1.0, queue_size=2)
    log._thread = object()  # type: ignore[assignment]  # no writer: the queue stays full
    started = time.perf_counter()
    accepted = [log.offer(record(i)) for i in range(1000)]
    assert time.perf_counter() - started < 0.5
    assert accepted.count(True) == 2 and log.dropped[("iris", "queue_full")] == 998


def test_rotation_bounds_disk(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, 1.0, max_bytes=2000, backups=2)
    for i in range(500):
        log.write(record(i))
    files = sorted((tmp_path / "iris").iterdir())
    assert len(files) == 3 and all(f.stat().st_size <= 2100 for f in files)
    last = json.loads(files[0].read_text().splitlines()[-1])
    assert last["prediction_id"] == "499" and log.logged["iris"] == 500


def test_writer_thread_writes_offered_records(tmp_path: Path) -> None:
    log = PayloadLog(tmp_path, 1.0)
    assert log.offer(record(1))
    log.queue.join()
    assert json.loads((tmp_path / "iris" / "payloads.jsonl").read_text())["inputs"] == {"x": 1}


def test_what_queued_up_is_written_together_in_order_and_a_bad_record_alone_is_dropped(
    tmp_path: Path,
) -> None:
    log = PayloadLog(tmp_path, 1.0, max_bytes=20_000, backups=5)
    log._thread = object()  # type: ignore[assignment]  # queue everything before writing
    records = [record(i) for i in range(300)]
    records[150]["inputs"] = {"x": object()}  # not JSON: dropped on its own
    assert all(log.offer(r) for r in records)
    log._thread = None
    assert log.offer(record(300))  # starts the writer, which takes what queued up
    log.queue.join()

    def age(file: Path) -> int:  # payloads.jsonl.2 is older than .1, older than the file
        return int(file.suffix[1:]) if file.suffix[1:].isdigit() else 0

    files = sorted((tmp_path / "iris").iterdir(), key=age, reverse=True)
    assert len(files) >= 2  # it rotated
    ids = [json.loads(line)["prediction_id"] for f in files for line in f.read_text().splitlines()]
    assert ids == [str(i) for i in range(301) if i != 150]
    assert log.logged["iris"] == 300 and log.dropped[("iris", "write_error")] == 1
    assert all(f.stat().st_size <= 20_000 for f in files)
