"""Benchmark scripts keep working (tiny mode, seconds); they assert nothing about speed."""

from __future__ import annotations

from scripts import bench_recommend


def test_recommend_benchmark_runs_and_reports_both_paths() -> None:
    report = bench_recommend.main("tiny", users=3, embed_dim=4)
    assert "| recommend_books (structured) |" in report
    assert "| brute-force forward + top-k |" in report
