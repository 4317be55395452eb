"""Benchmark scripts keep working (tiny mode, seconds); they assert nothing about speed."""

from __future__ import annotations

from scripts.benchmarks import bench
from scripts.benchmarks import mask as bench_mask
from scripts.benchmarks import recommend as bench_recommend


def test_recommend_benchmark_runs_and_reports_both_paths() -> None:
    report = bench_recommend.main("tiny", users=3, embed_dim=4)
    assert "| recommend_books (structured) |" in report
    assert "| brute-force forward + top-k |" in report


def test_mask_benchmark_runs_against_the_server(server, default_models: dict[str, str]) -> None:
    text = bench_mask.report(server.url, seconds=0.3)
    assert "| decode + resize (front, one thread) |" in text
    for clients in (1, 32):
        row = next(line for line in text.splitlines() if f"classify_mask, {clients} client" in line)
        assert row.rstrip(" |").endswith("| 0")  # no errors


def test_side_by_side_benchmark_runs_in_tiny_mode(server, default_models: dict[str, str]) -> None:
    text = bench.run_all(0.5, tiny=True, bundle_url=server.url)
    rows = [line for line in text.splitlines() if line.startswith("| predict_credit |")]
    servers = {"bundle", "baseline", bench.UNBATCHED, bench.BATCHED, bench.AFTER_BURST}
    assert {row.split("|")[2].strip() for row in rows} == servers
    assert all(row.split("|")[8].strip() == "0" for row in rows)  # no errors
    assert "| echo (stack floor) | echo |" in text
    targets = text[text.index("| target | measured | met |") :]
    assert "predict_credit, 1 client, right after a burst: p50 <= 1 ms over batching off" in targets
    assert "| 0 errors in every run | 0 runs with errors | yes |" in targets
