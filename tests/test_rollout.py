"""The automatic rollout's judgement (model_bundle/versions/rollout.py), in process: a
candidate waits until it has enough calls, moves on while its figures hold, and is dropped
as soon as one of them is worse than the primary's by more than the policy allows."""

from __future__ import annotations

from typing import Any

import pytest

from model_bundle.versions.requests import BodyError, parse
from model_bundle.versions.rollout import RolloutPolicy, VersionFigures, judge
from model_bundle.versions.state import Event, RoutingState

POLICY = RolloutPolicy(min_answers=100, min_feedback=30)


def side(calls: int = 500, errors: float = 0.0, p95: float = 0.010, **more: Any) -> dict:
    return {"calls": calls, "error_rate": errors, "p95_s": p95, **more}


def test_a_candidate_with_too_few_calls_waits() -> None:
    verdict = judge(POLICY, "canary", side(calls=99), side())
    assert verdict.action == "wait"
    assert verdict.reasons == ("99 of 100 calls", "0 of 30 feedback")


def test_a_canary_that_holds_is_promoted_once_it_has_its_feedback() -> None:
    waiting = judge(POLICY, "canary", side(feedback=29, accuracy=0.9), side())
    assert (waiting.action, waiting.reasons) == ("wait", ("29 of 30 feedback",))
    held = judge(
        POLICY, "canary", side(feedback=30, accuracy=0.9), side(feedback=200, accuracy=0.6)
    )
    assert held.action == "promote"
    assert "live accuracy 0.900 vs the primary's 0.600 over 30 feedback" in held.reasons[0]
    assert held.figures["candidate"]["accuracy"] == 0.9


def test_a_shadow_that_holds_goes_out_as_a_canary() -> None:
    verdict = judge(RolloutPolicy(min_answers=100, canary_share=35), "shadow", side(), side())
    assert verdict.action == "canary"
    assert "canary at 35%" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("candidate", "primary", "why"),
    [
        (side(errors=0.03), side(errors=0.01), "error rate 3.00% vs the primary's 1.00%"),
        (side(p95=0.040), side(p95=0.010), "p95 latency 40.0 ms vs the primary's 10.0 ms"),
        (
            side(feedback=40, accuracy=0.70),
            side(feedback=40, accuracy=0.80),
            "live accuracy 0.700 vs the primary's 0.800",
        ),
        (
            side(feedback=40, rmse=1.9),
            side(feedback=40, rmse=1.6),
            "live RMSE 1.900 vs the primary's 1.600",
        ),
    ],
)
def test_a_candidate_worse_by_any_figure_is_dropped(
    candidate: dict, primary: dict, why: str
) -> None:
    verdict = judge(POLICY, "canary", candidate, primary)
    assert verdict.action == "drop"
    assert any(reason.startswith(why) for reason in verdict.reasons), verdict.reasons


def test_within_the_allowances_nothing_is_worse() -> None:
    near = side(errors=0.015, p95=0.0149, feedback=40, accuracy=0.79)
    verdict = judge(POLICY, "canary", near, side(errors=0.01, feedback=40, accuracy=0.80))
    assert verdict.action == "promote", verdict.reasons


def test_accuracy_is_compared_only_once_both_sides_have_feedback() -> None:
    few = judge(POLICY, "canary", side(feedback=5, accuracy=0.0), side(feedback=500, accuracy=1))
    assert few.action == "wait"  # 5 answers judged wrong decide nothing yet


def test_a_shadow_below_its_least_agreement_is_dropped() -> None:
    policy = RolloutPolicy(min_answers=10, min_agreement=0.9)
    verdict = judge(policy, "shadow", side(agreement=0.5), side())
    assert verdict.action == "drop"
    assert verdict.reasons == ("agreement 50.00% below 90.00%",)


def test_figures_are_the_newest_calls_error_rate_and_p95() -> None:
    figures = VersionFigures()
    for i in range(100):
        figures.add(i % 10 != 0, 0.001 * (i + 1))
    summary = figures.summary()
    assert summary["calls"] == 100
    assert summary["error_rate"] == 0.1
    ok = sorted(0.001 * (i + 1) for i in range(100) if i % 10 != 0)
    assert summary["p95_s"] == round(ok[85], 4)  # the 86th of 90 successes


def test_a_policy_is_refused_naming_its_field() -> None:
    with pytest.raises(BodyError) as refused:
        parse("candidate", {"tag": "credit_health:v2", "rollout": {"min_answers": 0}})
    assert (refused.value.field, refused.value.kind) == (
        "rollout.min_answers",
        "greater_than_equal",
    )
    with pytest.raises(BodyError) as unknown:
        parse("candidate", {"tag": "credit_health:v2", "rollout": {"canary": 5}})
    assert (unknown.value.field, unknown.value.kind) == ("rollout.canary", "extra_forbidden")


def test_the_policy_goes_with_its_candidate() -> None:
    state = RoutingState("credit_health", "credit_health:v1")
    event = Event("candidate", "credit_health:v2", "test", "now")
    with_policy = state.changed(event, candidate="credit_health:v2", rollout={"min_answers": 5})
    assert RoutingState.from_json(with_policy.to_json()).rollout == {"min_answers": 5}
    promoted = with_policy.changed(
        Event("auto_promote", "credit_health:v2", "rollout", "now"),
        primary="credit_health:v2",
        candidate=None,
    )
    assert promoted.rollout is None
