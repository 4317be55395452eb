"""Benchmark scripts keep working (tiny mode, seconds); they assert nothing about speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.benchmarks import arms, bench, goals
from scripts.benchmarks import batch as bench_batch
from scripts.benchmarks import first_answer as bench_first_answer
from scripts.benchmarks import mask as bench_mask
from scripts.benchmarks import merging as bench_merging
from scripts.benchmarks import monitoring as bench_monitoring
from scripts.benchmarks import recommend as bench_recommend
from scripts.benchmarks import suite as bench_suite
from scripts.benchmarks import versions as bench_versions
from tests.support import server as serving


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
    targets = text[text.index("| goal | measured | met |") :]
    assert "predict_credit, 1 client, right after a burst: p50 <= 1 ms over batching off" in targets
    assert "| 0 errors in every run | 0 runs with errors | yes |" in targets


@pytest.mark.e2e
def test_versions_benchmark_changes_versions_under_load_without_a_failure(
    default_models: dict[str, str],
) -> None:
    figures, text = bench_versions.measure(16, canary_requests=300, phase_s=1.0)
    assert figures["statuses"] == {200: figures["total"]}, figures["statuses"]
    on_canary, window = figures["canary"]
    assert window == 300 and abs(on_canary / window - 0.30) <= 0.03, figures["canary"]
    assert figures["after_promote"] == {figures["candidate"]}
    assert figures["after_rollback"] == {default_models["credit_health"]}
    assert "| canary 30 %: share observed over 300 requests |" in text


def test_monitoring_benchmark_flags_the_percent_shift_in_tiny_sizes(
    default_models: dict[str, str],
) -> None:
    lines, alarms = bench_monitoring.detection_report(windows=3, trials=2)
    [row] = [line for line in lines if "credit ratios sent in percent" in line]
    fresh, after = (cell.strip() for cell in row.split("|")[3:5])
    assert fresh.startswith(f"{bench_monitoring.settings.drift_min_samples} "), row
    assert "not flagged" not in after, row
    for shift in ("a new population of book users", "darker photos"):
        [row] = [line for line in lines if shift in line]
        assert "not flagged" not in row and "no " not in row, row  # flagged in every trial
    assert [(a.model, a.windows) for a in alarms] == [
        ("credit_health", 3),
        ("iris", 3),
        ("book_rating", 3),
        ("mask_classifier", 3),
    ]
    goals = bench_monitoring.goal_rows(alarms, None)
    assert any(goal.goal == "iris: false alarms under 1 window in 100" for goal in goals)


def test_monitoring_goals_compare_the_default_with_the_tree_without_the_monitor_by_round() -> None:
    """Each round's pair: a machine twice as fast in some rounds does not hide a 10 % cost
    (the arms' ranges overlap, their rounds' ratios do not scatter), while one round that
    disagrees makes the verdict 'within noise'."""
    speeds = [1.0, 2.0, 1.0, 2.0, 1.0]

    def figures(rates: list[float], p50s: list[float]) -> arms.Figures:
        return arms.Figures(rates, p50s, ["0"] * 5, [1.0] * 5)

    measured = {}
    for endpoint in bench_monitoring.COST_ENDPOINTS:
        before_rates, now_rates = [100.0 * s for s in speeds], [90.0 * s for s in speeds]
        before_p50s = [5.0 * s for s in speeds]
        measured[(bench_monitoring.BEFORE, endpoint, 64)] = figures(before_rates, [0.0] * 5)
        measured[(bench_monitoring.DEFAULT_ARM, endpoint, 64)] = figures(now_rates, [0.0] * 5)
        measured[(bench_monitoring.BEFORE, endpoint, 1)] = figures([0.0] * 5, before_p50s)
        measured[(bench_monitoring.DEFAULT_ARM, endpoint, 1)] = figures(
            [0.0] * 5, [p + 0.1 for p in before_p50s]
        )
    rows = [goal.row() for goal in bench_monitoring.goal_rows([], measured)]
    throughput = next(line for line in rows if "`predict_credit`: logging and drift" in line)
    latency = next(line for line in rows if "`predict_credit`: at most 0.2 ms" in line)
    cpu = next(line for line in rows if "`predict_credit`: the same from CPU" in line)
    assert throughput.endswith(
        "| cost +10.0%; 94% interval +10.0% to +10.0% over 5 paired rounds "
        "(90 vs 100 requests/s) | **no** |"
    ), throughput
    assert latency.endswith(
        "| +0.10 ms; 94% interval +0.10 ms to +0.10 ms over 5 paired rounds (5.10 vs 5.00) | yes |"
    ), latency
    assert "| +0.0%; 94% interval" in cpu and cpu.endswith("| yes |"), cpu
    measured[(bench_monitoring.DEFAULT_ARM, "predict_credit", 64)].requests_per_second[1] = 198
    rows = [goal.row() for goal in bench_monitoring.goal_rows([], measured)]
    throughput = next(line for line in rows if "`predict_credit`: logging and drift" in line)
    assert "cost +10.0%; 94% interval +1.0% to +10.0%" in throughput, throughput
    assert throughput.endswith("| **no** (within noise) |"), throughput


def test_paired_interval_is_the_sign_tests_between_order_statistics() -> None:
    """12 rounds: (x_3, x_10), which holds the median with 1 - 2 P(Bin(12, 1/2) <= 2), 96 %;
    below 5 rounds, not even the range holds it with 90 %, and the range is given."""
    twelve = arms.Paired.of([float(v) for v in (11, 0, 10, 1, 9, 2, 8, 3, 7, 4, 6, 5)])
    assert (twelve.low, twelve.median, twelve.high) == (2.0, 5.5, 9.0)
    assert twelve.coverage == pytest.approx(1 - 2 * (1 + 12 + 66) / 4096)
    three = arms.Paired.of([3.0, 1.0, 2.0])
    assert (three.low, three.high, three.coverage) == (1.0, 3.0, 0.75)
    assert three.straddles(2.5) and not three.straddles(3.5)
    assert arms.paired_ratio([110.0, 90.0], [100.0, 100.0]).changes == pytest.approx([0.1, -0.1])


def test_arms_are_measured_one_after_another_at_each_client_count() -> None:
    """One round's figures of the arms are adjacent in time (a pair), and the arms' order
    reverses every round."""
    order = list(arms.schedule(["a", "b"], ["credit", "books"], rounds=2, clients=(1, 64)))
    assert order[:4] == [(0, "credit", 1, "a"), (0, "credit", 1, "b"),
                         (0, "credit", 64, "a"), (0, "credit", 64, "b")]  # fmt: skip
    assert order[8:10] == [(1, "credit", 1, "b"), (1, "credit", 1, "a")]
    assert len(order) == 2 * 2 * 2 * 2


def test_arms_are_started_anew_in_blocks_of_rounds_with_one_seed_a_block() -> None:
    """A run's rounds fall into blocks (a fresh start of every arm each), the last block the
    rest; a block's arms share a hash seed, an arm's own settings kept; the blocks' figures
    join round after round."""
    assert arms.block_sizes(36, 6) == [6] * 6
    assert arms.block_sizes(13, 6) == [6, 6, 1]
    assert arms.block_sizes(4, 6) == [4]
    sides = [arms.Arm("a"), arms.Arm("b", env={"MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE": "0"})]
    second = arms.seeded(sides, 2)
    assert [arm.env for arm in second] == [
        {"PYTHONHASHSEED": "2"},
        {"PYTHONHASHSEED": "2", "MODEL_BUNDLE_PAYLOAD_SAMPLE_RATE": "0"},
    ]
    assert sides[0].env == {}  # the arms given are not changed
    joined = {("a", "credit", 64): arms.Figures([1.0], [2.0], ["0"], [0.5])}
    arms.extend(joined, {("a", "credit", 64): arms.Figures([3.0], [4.0], ["1"], [0.7])})
    arms.extend(joined, {("b", "credit", 64): arms.Figures([5.0], [6.0], ["0"], [0.9])})
    assert joined[("a", "credit", 64)] == arms.Figures(
        [1.0, 3.0], [2.0, 4.0], ["0", "1"], [0.5, 0.7]
    )
    assert joined[("b", "credit", 64)].requests_per_second == [5.0]


def test_the_arm_without_the_monitor_edits_this_trees_record_into_ids_only() -> None:
    """The edit is textual: it must still find its place, the end of record()'s docstring in
    monitor.py, and the edited module must still compile."""
    for path, (old, new) in bench_monitoring.NOT_RECORDING.items():
        text = (serving.ROOT / path).read_text()
        assert text.count(old) == 1, path
        record = text.index("    def record(")
        assert record < text.index(old) < text.index("    def ", record + 1), path
        compile(text.replace(old, new), path, "exec")


def test_merging_report_judges_each_goal_from_the_medians(default_models: dict[str, str]) -> None:
    """The report of scripts/benchmarks/merging.py, from figures made up to meet some goals
    and miss others: each goal row says which."""

    def figures(rate: float, p50: float) -> arms.Figures:
        return arms.Figures([rate * 0.9, rate, rate * 1.1], [p50] * 3, ["0"] * 3, [1.0] * 3)

    made_up = {(bench_merging.FLOOR, "echo (stack floor)", 64): figures(1000, 1.0)}
    for workload, many in bench_merging.workloads():
        made_up[(bench_merging.BASELINE, workload.name, 1)] = figures(800, 1.0)
        made_up[(bench_merging.BASELINE, workload.name, many)] = figures(500, 100.0)
        for workers in (1, 2):
            now = bench_merging.arm_name(bench_merging.NOW, workers)
            before = bench_merging.arm_name(bench_merging.BEFORE, workers)
            made_up[(now, workload.name, 1)] = figures(250, 4.1)
            made_up[(before, workload.name, 1)] = figures(250, 4.0)
            made_up[(now, workload.name, many)] = figures(900 if workers == 1 else 700, 50.0)
            made_up[(before, workload.name, many)] = figures(550, 100.0)
    text = "\n".join(bench_merging.lines(made_up, 2, 3, "abc1234", "load average 1.0"))
    row = "| predict_credit (64 clients) | merged, 1 worker | 4.10 (4.10-4.10) | 900 (810-990) |"
    assert f"{row} 0.90 | 1.80x |" in text
    goals = text[text.index("| goal | measured | met |") :]
    passed = "predict_credit, 64 clients, merged, 1 worker: >= 0.8 of the floor, >= 1.5x the"
    assert f"{passed} baseline | 0.90 of the floor, 1.80x the baseline | yes |" in goals
    assert "merged, 2 workers: >= 0.8 of the floor, >= 1.5x the baseline | 0.70 of" in goals
    assert "1.40x the baseline | **no** |" in goals
    assert "| classify_mask, 1 client: p50 <= +0.2 ms over before | 4.10 against 4.00 ms" in goals
    assert "| 0 errors (bundles and floor) | 0 runs with errors | yes |" in goals


def test_goals_table_gathers_each_pages_goal_rows_and_names_the_pages_without(
    tmp_path: Path,
) -> None:
    made_up = [goals.Goal("fast", "1 s", True), goals.Goal("small", "2 GB", False, "noisy")]
    (tmp_path / "PERFORMANCE.md").write_text(
        "# Bench\n\n| endpoint | rows/s |\n|---|---|\n| credit | 5 |\n\n"
        + "\n".join(goals.markdown(made_up))
        + "\n\nAfter the table.\n"
    )
    text = goals.table(tmp_path)
    section = text[text.index("## [PERFORMANCE.md]") : text.index("## [PERFORMANCE-merging.md]")]
    assert "1 of 2 met" in section and "committed not committed" in section
    assert "| fast | 1 s | yes |" in section
    assert "| small | 2 GB | **no** (noisy) |" in section
    assert "| credit | 5 |" not in section and "After the table" not in section
    for page, command in goals.SOURCES.items():
        if page != "PERFORMANCE.md":
            assert f"No goal table yet: `{command}` measures its goals." in text


def test_suite_report_reads_pytests_summary_and_slowest_steps() -> None:
    output = "\n".join(
        [
            "============================= slowest 30 durations =============================",
            "181.20s call     tests/test_bento.py::test_exported_bento_serves",
            "12.50s setup    tests/test_endpoints.py::test_models",
            "40.00s call     tests/test_mlflow.py::test_sync",
            "======================== 407 passed in 68.87s (0:01:08) ========================",
            "================ 648 passed, 2 warnings in 1759.31s (0:29:19) ================",
        ]
    )
    assert bench_suite.summary(output) == (  # make test: the fast run, then the end-to-end one
        "407 passed in 68.87s (0:01:08); 648 passed, 2 warnings in 1759.31s (0:29:19)"
    )
    assert [(s, test) for s, _, test in bench_suite.slowest(output)] == [
        (181.2, "tests/test_bento.py::test_exported_bento_serves"),
        (40.0, "tests/test_mlflow.py::test_sync"),
        (12.5, "tests/test_endpoints.py::test_models"),
    ]
    figures = {"whole_s": 1759.3, "whole": "648 passed", "fast_s": 45.0, "fast": "300 passed"}
    whole, fast = bench_suite.goal_rows(figures)
    assert (whole.met, whole.measured) == (False, "29.3 min (648 passed)")
    assert (fast.met, fast.measured) == (True, "45 s (300 passed)")


def test_first_answer_goals_time_training_and_start_from_the_phases_marks() -> None:
    marks = {
        "load average at the start": 0.0,
        "install the serving packages (uv)": 8.0,
        "train the default models": 30.0,
        "start the server": 58.0,
        "first answer": 66.5,
    }
    rows = [goal.row() for goal in bench_first_answer.goal_rows(marks)]
    assert rows == [
        "| first answer within 120 s of `make serve` | 66 s | yes |",
        "| default training within 30 s | 28 s | yes |",
        "| the server answers within 6 s of `bentoml serve` | 8.5 s | **no** |",
    ]


def test_batch_goals_judge_the_tiny_models_against_their_raw_model() -> None:
    made_up = [
        bench_batch.Figures("credit_health", 100, raw=1000.0, pipeline=700.0, end_to_end=490.0),
        bench_batch.Figures("iris", 100, raw=1000.0, pipeline=690.0, end_to_end=500.0),
        bench_batch.Figures("book_rating", 100, raw=1000.0, pipeline=10.0, end_to_end=10.0),
    ]
    rows = [goal.row() for goal in bench_batch.goal_rows(made_up)]
    assert rows == [
        "| credit_health: in memory at least 70% of the raw model | 70% | yes |",
        "| credit_health: end to end with Parquet at least 50% of the raw model | 49% | **no** |",
        "| iris: in memory at least 70% of the raw model | 69% | **no** |",
        "| iris: end to end with Parquet at least 50% of the raw model | 50% | yes |",
    ]
