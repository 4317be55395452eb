"""Automatic rollout: a candidate carries a policy, the front judges its live figures against
the primary's, and the candidate moves on (shadow -> canary -> primary) while they hold, or is
removed as soon as they worsen.

Judged per version over the last ``OUTCOMES`` calls this front made to it: the error rate,
the 95th-percentile latency, live accuracy (classifiers) or RMSE (ratings) from the feedback
joined to its answers, and for a shadow its agreement with the primary. Each figure is judged
only once both sides have enough of it (``min_answers`` calls, ``min_feedback`` feedback),
so a handful of early requests decides nothing. Pure and torch-free: what to do is decided
here; serving.py counts and control.py changes the state.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OUTCOMES = 2000  # calls per version the figures are taken over (the newest)
LATENCY_SLACK_S = 0.002  # below this a p95 difference is noise on a loaded machine
Action = Literal["wait", "canary", "promote", "drop"]


class RolloutPolicy(BaseModel):
    """How a candidate is judged. Sent with ``POST /admin/models/{name}/candidate`` as
    ``rollout``; stored in the routing state beside the candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_answers: int = Field(
        200, ge=1, le=1_000_000, description="Calls to the candidate before it can move on."
    )
    min_feedback: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Feedback on the candidate's answers before it can be promoted "
        "(0: promote without; accuracy is still compared once both sides have 20).",
    )
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="Allowed error rate above the primary's."
    )
    max_latency_ratio: float = Field(
        1.5, ge=1, le=100, description="Allowed p95 latency as a multiple of the primary's."
    )
    max_accuracy_drop: float = Field(
        0.02, ge=0, le=1, description="Allowed live accuracy below the primary's."
    )
    max_rmse_increase: float = Field(
        0.1, ge=0, le=10, description="Allowed live RMSE above the primary's (ratings)."
    )
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="A shadow's least agreement with the primary (none: any)."
    )
    canary_share: float = Field(
        20.0, gt=0, le=100, description="The share a shadow that held goes to as a canary."
    )


FEEDBACK_COMPARED = 20  # feedback on each side before live accuracy is compared


@dataclass
class VersionFigures:
    """One version's recent calls from this front: success and seconds each."""

    outcomes: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=OUTCOMES))

    def add(self, ok: bool, seconds: float) -> None:
        self.outcomes.append((ok, seconds))

    def summary(self) -> dict[str, Any]:
        calls = len(self.outcomes)
        if not calls:
            return {"calls": 0, "error_rate": None, "p95_s": None}
        errors = sum(1 for ok, _ in self.outcomes if not ok)
        latencies = sorted(s for ok, s in self.outcomes if ok)
        p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)]
        return {
            "calls": calls,
            "error_rate": round(errors / calls, 4),
            "p95_s": round(p95, 4) if latencies else None,
        }


@dataclass(frozen=True)
class Verdict:
    action: Action
    reasons: tuple[str, ...]
    figures: dict[str, Any]


def judge(
    policy: RolloutPolicy,
    mode: str,
    candidate: dict[str, Any],
    primary: dict[str, Any],
) -> Verdict:
    """What to do with a candidate (``mode`` shadow or canary) given both sides' figures:
    ``calls``, ``error_rate``, ``p95_s``, and optionally ``feedback`` (count), ``accuracy``,
    ``rmse`` and (a shadow) ``agreement``."""
    figures = {"candidate": candidate, "primary": primary}
    waiting: list[str] = []
    if candidate["calls"] < policy.min_answers:
        waiting.append(f"{candidate['calls']} of {policy.min_answers} calls")
    worse = [] if waiting else _served_worse(policy, candidate, primary)
    if mode == "shadow" and policy.min_agreement is not None:
        agreement = candidate.get("agreement")
        if agreement is not None and agreement < policy.min_agreement:
            worse.append(f"agreement {agreement:.2%} below {policy.min_agreement:.2%}")
    if min(candidate.get("feedback", 0), primary.get("feedback", 0)) >= FEEDBACK_COMPARED:
        worse += _answers_worse(policy, candidate, primary)
    if worse:
        return Verdict("drop", tuple(worse), figures)
    if mode == "canary" and candidate.get("feedback", 0) < policy.min_feedback:
        waiting.append(f"{candidate.get('feedback', 0)} of {policy.min_feedback} feedback")
    if waiting:
        return Verdict("wait", tuple(waiting), figures)
    held = f"held over {candidate['calls']} calls"
    if mode == "shadow":
        return Verdict("canary", (f"{held}; out as a canary at {policy.canary_share:g}%",), figures)
    return Verdict("promote", (held + _feedback_words(candidate, primary),), figures)


def _served_worse(
    policy: RolloutPolicy, candidate: dict[str, Any], primary: dict[str, Any]
) -> list[str]:
    """How the candidate serves worse than the primary: errors, latency."""
    worse = []
    if primary["calls"] and candidate["error_rate"] - primary["error_rate"] > (
        policy.max_error_rate_increase
    ):
        worse.append(
            f"error rate {candidate['error_rate']:.2%} vs the primary's {primary['error_rate']:.2%}"
        )
    slow, fast = candidate["p95_s"], primary["p95_s"]
    if (
        slow is not None
        and fast is not None
        and slow > fast * policy.max_latency_ratio + (LATENCY_SLACK_S)
    ):
        worse.append(
            f"p95 latency {slow * 1000:.1f} ms vs the primary's {fast * 1000:.1f} ms "
            f"(allowed x{policy.max_latency_ratio:g})"
        )
    return worse


def _answers_worse(
    policy: RolloutPolicy, candidate: dict[str, Any], primary: dict[str, Any]
) -> list[str]:
    """How the candidate answers worse than the primary by the feedback on both."""
    worse = []
    ours, theirs = candidate.get("accuracy"), primary.get("accuracy")
    if ours is not None and theirs is not None and ours < theirs - policy.max_accuracy_drop:
        worse.append(f"live accuracy {ours:.3f} vs the primary's {theirs:.3f}")
    ours, theirs = candidate.get("rmse"), primary.get("rmse")
    if ours is not None and theirs is not None and ours > theirs + policy.max_rmse_increase:
        worse.append(f"live RMSE {ours:.3f} vs the primary's {theirs:.3f}")
    return worse


def _feedback_words(candidate: dict[str, Any], primary: dict[str, Any]) -> str:
    for kind in ("accuracy", "rmse"):
        if candidate.get(kind) is not None and primary.get(kind) is not None:
            return (
                f"; live {kind} {candidate[kind]:.3f} vs the primary's {primary[kind]:.3f} "
                f"over {candidate.get('feedback', 0)} feedback"
            )
    return ""
