"""Benchmark the image endpoint: where the time goes for a 384x512 JPEG.

    python -m scripts.benchmarks.mask [--url URL] [--seconds 10] [--write]

Measures, in one run: the raw model forward in-process (batch 1 and 16), decode + resize
alone, and ``classify_mask`` through a running bundle at 1 and 32 concurrent clients
(started here on a free port unless --url is given; the default models must be in the
store). The load generator is Python (httpx), on the same 2 cores: a floor, not a ceiling.
With --write, the table goes to docs/PERFORMANCE-mask.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
from pathlib import Path

import httpx
import numpy as np
import torch

from model_bundle.catalogue import MASK_CLASSIFIER
from models.artifact import Artifact
from models.mask.contract import resize
from models.mask.images import load_rgb
from models.mask.network import load_network, normalise
from scripts.benchmarks import load
from scripts.sample_data.mask import jpeg
from tests.support import server as serving

REPORT = serving.ROOT / "docs" / "PERFORMANCE-mask.md"


def in_process(data: bytes, seconds: float) -> list[tuple[str, float]]:
    torch.set_num_threads(1)  # as in the runner
    network, prep = load_network(Artifact.load(f"{MASK_CLASSIFIER.name}:latest"))
    pixels = resize(load_rgb(data), prep)

    def forward(batch: int) -> None:
        with torch.inference_mode():
            network(normalise(np.repeat(pixels[None], batch, axis=0), prep))

    return [
        (
            "decode + resize (front, one thread)",
            load.per_second(lambda: resize(load_rgb(data), prep), seconds),
        ),
        (
            "model forward, batch 1 (runner, one thread)",
            load.per_second(lambda: forward(1), seconds),
        ),
        (
            "model forward, batch 16 (runner, one thread)",
            load.per_second(lambda: forward(16), seconds, 16),
        ),
    ]


def through_server(url: str, data: bytes, seconds: float) -> list[tuple[str, load.LoadResult]]:
    async def send(http: httpx.AsyncClient) -> httpx.Response:
        return await http.post("/classify_mask", files={"image": ("face.jpg", data, "image/jpeg")})

    return [
        (f"classify_mask, {clients} client(s)", asyncio.run(load.run(url, send, clients, seconds)))
        for clients in (1, 32)
    ]


def report(url: str | None, seconds: float) -> str:
    data = jpeg()
    local = in_process(data, seconds)
    process = None
    if url is None:
        port = serving.free_port()
        process = serving.start(port, Path(tempfile.mkstemp(suffix=".log")[1]))
        url = f"http://127.0.0.1:{port}"
        serving.wait_until_ready(url, process, 120)
    try:
        served = through_server(url, data, seconds)
    finally:
        if process is not None:
            serving.stop(process)
    lines = [
        "# Image endpoint: where the time goes",
        "",
        f"A 384x512 JPEG ({len(data):,} bytes), the default mask model, "
        f"{platform.machine()}, {seconds:g} s per line. "
        "Reproduce: `python -m scripts.benchmarks.mask`.",
        "",
        "| path | images/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        *(f"| {name} | {rate:.0f} | | | |" for name, rate in local),
        *(
            f"| {name} | {r.requests_per_second:.0f} | {r.percentile_ms(50):.1f} | "
            f"{r.percentile_ms(99):.1f} | {r.errors} |"
            for name, r in served
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running bundle (default: start one)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(args.url, args.seconds)
    if args.write:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(text)
