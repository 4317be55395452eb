"""In-process checks of the routing state files and of which version a request is routed to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_bundle.versions.requests import BodyError, CandidateRequest, parse
from model_bundle.versions.routing import Buckets, effective, keyed_bucket
from model_bundle.versions.state import Event, RoutingState, StateDirectory, Watched, now

A, B, C = "credit_health:aaaa", "credit_health:bbbb", "credit_health:cccc"


def served(*tags: str, default: str = A) -> dict:
    return {"default": default, "versions": [{"tag": t, "slot": i} for i, t in enumerate(tags)]}


def test_the_state_file_round_trips_and_is_replaced_atomically(tmp_path: Path) -> None:
    states = StateDirectory(tmp_path / "state")
    assert states.read("credit_health") is None
    event = Event("candidate", B, "alice", now(), {"share": 30.0})
    state = RoutingState("credit_health", A).changed(event, candidate=B, mode="canary", share=30)
    states.write(state)
    assert states.read("credit_health") == state
    on_disk = json.loads(states.path("credit_health").read_text())
    assert on_disk["candidate"] == B and on_disk["history"][0]["by"] == "alice"
    # only the state file is left: the temporary file was renamed over it
    assert sorted(p.name for p in states.directory.iterdir() if not p.name.endswith(".lock")) == [
        "credit_health.json"
    ]


def test_a_changed_file_is_seen_by_another_reader_at_its_next_poll(tmp_path: Path) -> None:
    writer, reader = StateDirectory(tmp_path), Watched(StateDirectory(tmp_path), "iris", 1.0)
    assert not reader.poll(0.0) and reader.state is None  # no file yet
    writer.write(RoutingState("iris", "iris:one"))
    assert not reader.poll(0.5)  # polled at most once per interval
    assert reader.poll(1.5) and reader.state == RoutingState("iris", "iris:one")
    assert not reader.poll(3.0)  # unchanged: nothing re-read
    writer.write(RoutingState("iris", "iris:two"))
    assert reader.poll(4.5) and reader.state is not None and reader.state.primary == "iris:two"


def test_a_candidate_not_loaded_is_never_routed_to() -> None:
    state = RoutingState("credit_health", A, candidate=B, mode="canary", share=100)
    routing = effective("credit_health", state, served(A), None)
    assert routing.candidate is None and not routing.canary(0.0)
    routing = effective("credit_health", state, served(A, B), None)
    assert routing.candidate is not None and routing.candidate.slot == 1 and routing.canary(99.9)


def test_a_promoted_primary_still_loading_leaves_the_old_one_serving() -> None:
    state = RoutingState("credit_health", C, previous=A)
    assert effective("credit_health", state, served(A, B), last_primary=A).primary.tag == A
    assert effective("credit_health", state, served(A, C), last_primary=A).primary.tag == C


def test_the_canary_share_is_what_was_set() -> None:
    state = RoutingState("credit_health", A, candidate=B, mode="canary", share=30)
    routing = effective("credit_health", state, served(A, B), None)
    buckets = Buckets()
    canary = sum(routing.canary(buckets.next()) for _ in range(2000))
    assert abs(canary / 2000 - 0.30) < 0.01, canary


def test_a_shadow_gets_no_live_traffic_and_a_user_stays_on_one_version() -> None:
    shadow = RoutingState("book_rating", A, candidate=B, mode="shadow", share=50)
    routing = effective("book_rating", shadow, served(A, B), None)
    assert routing.shadow() is not None and not routing.canary(0.0)
    buckets = [keyed_bucket("book_rating", user) for user in range(1000)]
    assert buckets == [keyed_bucket("book_rating", user) for user in range(1000)]
    assert 0.25 < sum(b < 30 for b in buckets) / 1000 < 0.35  # spread evenly


@pytest.mark.parametrize("share", [-1, 100.5, "30", True, None, float("nan")])
def test_a_share_outside_0_to_100_is_refused(share: object) -> None:
    with pytest.raises(BodyError) as refused:
        parse("share", {"share": share})
    assert (refused.value.field, refused.value.kind) == ("share", "share_out_of_range")
    assert "0 to 100" in refused.value.msg


@pytest.mark.parametrize(
    ("action", "body", "field", "kind"),
    [
        ("candidate", {}, "tag", "missing"),
        ("candidate", {"tag": "  "}, "tag", "missing"),
        ("candidate", {"tag": "credit_health:x", "mode": "blue"}, "mode", "invalid_mode"),
        ("candidate", {"tag": "credit_health:x", "shares": 3}, "shares", "extra_forbidden"),
        ("share", {"share": 10, "mode": "blue"}, "mode", "invalid_mode"),
        ("promote", {"by": ""}, "by", "invalid_by"),
        ("rollback", {"by": "x" * 101}, "by", "invalid_by"),
        ("drop", {"tag": "credit_health:x"}, "tag", "extra_forbidden"),
    ],
)
def test_a_bad_admin_body_names_its_field_and_problem(
    action: str, body: dict[str, object], field: str, kind: str
) -> None:
    with pytest.raises(BodyError) as refused:
        parse(action, body)
    assert (refused.value.field, refused.value.kind) == (field, kind)


def test_admin_bodies_are_read_typed_with_their_defaults() -> None:
    request = parse("candidate", {"tag": " credit_health:x ", "share": 30})
    assert isinstance(request, CandidateRequest)
    assert (request.tag, request.mode, request.share, request.by) == (
        "credit_health:x", "shadow", 30.0, None
    )  # fmt: skip
