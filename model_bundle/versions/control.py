"""What the admin API does to a model's versions: each operation checks its input, then
changes the routing state (under the state's lock) or leaves it as it was.

A candidate is loaded by this replica's runner *before* the state names it, so the answer
to ``POST .../candidate`` means "loaded, warmed up and routed"; other replicas' runners load
it when they read the new state, and their fronts route to it once loaded.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from model_bundle.runner_client import call_runner
from model_bundle.versions.metrics import decided
from model_bundle.versions.requests import BodyError, CandidateRequest, ShareRequest, parse
from model_bundle.versions.rollout import RolloutPolicy, judge
from model_bundle.versions.state import Event, RoutingState, now

if TYPE_CHECKING:  # serving.py calls into this module (automatic rollout)
    from model_bundle.versions.serving import ModelVersions, Versions


class AdminError(Exception):
    """A refused operation: its status, message and the bundle's ``detail`` list."""

    def __init__(self, status: HTTPStatus, field: str, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.body = {"error": msg, "detail": [{"type": kind, "loc": ["body", field], "msg": msg}]}


async def operate(
    versions: Versions, name: str, action: str, body: dict[str, Any], key_name: str
) -> dict[str, Any]:
    """Apply ``action`` to model ``name``; its state and routing afterwards."""
    try:
        request = parse(action, body)
    except BodyError as refused:
        raise AdminError(HTTPStatus.BAD_REQUEST, refused.field, refused.kind, refused.msg) from None
    model = versions[name]
    by = request.by or key_name
    routing = await model.refresh()
    if action == "candidate":
        assert isinstance(request, CandidateRequest)
        mode, share = request.mode, request.share
        if request.rollout is not None and mode == "canary" and share == 0:
            raise AdminError(
                HTTPStatus.BAD_REQUEST,
                "share",
                "share_out_of_range",
                "a canary judged automatically needs a share above 0: it would get no calls",
            )
        rollout = request.rollout.model_dump() if request.rollout else None
        held = model.watched.state
        if held is not None and held.candidate:
            raise AdminError(
                HTTPStatus.CONFLICT,
                "tag",
                "candidate_exists",
                f"{name} already has a candidate, {held.candidate}: promote it or remove it "
                "(DELETE .../candidate) first",
            )
        answer = await call_runner(model.runner.to_async.load_version, tag=request.tag)
        if "error" in answer:
            problem = answer["error"]
            status = {
                "unknown_version": HTTPStatus.NOT_FOUND,
                "busy": HTTPStatus.CONFLICT,
            }.get(problem["type"], HTTPStatus.BAD_REQUEST)
            raise AdminError(status, "tag", problem["type"], problem["msg"])
        loaded = answer["tag"]
        primary = routing.primary.tag if held is None else held.primary
        if loaded == primary:
            raise AdminError(
                HTTPStatus.CONFLICT, "tag", "already_primary", f"{loaded} is {name}'s primary"
            )

        def change(state: RoutingState) -> RoutingState:
            if state.candidate:
                raise AdminError(
                    HTTPStatus.CONFLICT,
                    "tag",
                    "candidate_exists",
                    f"{name} already has a candidate, {state.candidate}",
                )
            detail = {"mode": mode, "share": share, "rollout": rollout}
            event = Event("candidate", loaded, by, now(), detail)
            return state.changed(event, candidate=loaded, mode=mode, share=share, rollout=rollout)

        return await commit(model, change, answer)

    if action == "share":
        assert isinstance(request, ShareRequest)
        share = request.share

        def change(state: RoutingState) -> RoutingState:
            no_candidate(state)
            mode = request.mode or state.mode
            event = Event("share", state.candidate, by, now(), {"mode": mode, "share": share})
            return state.changed(event, mode=mode, share=share)

    elif action == "promote":

        def change(state: RoutingState) -> RoutingState:
            no_candidate(state)
            if state.candidate not in routing.loaded:
                raise AdminError(
                    HTTPStatus.CONFLICT, "tag", "loading", f"{state.candidate} is still loading"
                )
            event = Event("promote", state.candidate, by, now(), {"replaced": state.primary})
            return state.changed(
                event, primary=state.candidate, candidate=None, share=0.0, previous=state.primary
            )

    elif action == "rollback":

        def change(state: RoutingState) -> RoutingState:
            if not state.previous:
                raise AdminError(
                    HTTPStatus.CONFLICT,
                    "model",
                    "no_previous",
                    f"{name} has no previous primary to roll back to",
                )
            if state.previous not in routing.loaded:
                raise AdminError(
                    HTTPStatus.CONFLICT, "model", "loading", f"{state.previous} is still loading"
                )
            event = Event("rollback", state.previous, by, now(), {"replaced": state.primary})
            candidate = None if state.candidate == state.previous else state.candidate
            return state.changed(
                event, primary=state.previous, previous=state.primary, candidate=candidate
            )

    else:  # drop the candidate

        def change(state: RoutingState) -> RoutingState:
            no_candidate(state)
            event = Event("drop", state.candidate, by, now())
            return state.changed(event, candidate=None, share=0.0)

    return await commit(model, change)


def no_candidate(state: RoutingState) -> None:
    if not state.candidate:
        raise AdminError(
            HTTPStatus.CONFLICT,
            "model",
            "no_candidate",
            f"{state.model} has no candidate (POST .../candidate loads one)",
        )


async def commit(
    model: ModelVersions, change: Any, served: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read-modify-write the state under its lock, then route by it at once here."""
    states, name = model.states, model.entry.name
    with states.locked(name):
        state = states.read(name)
        if state is None:  # the first change: what is served now becomes the state
            assert model.routing is not None
            primary = model.routing.primary.tag
            start = Event("start", primary, "settings", now())
            state = RoutingState(name, primary, history=(start,))
        new = change(state)
        states.write(new)
    model.reread()
    routing = await model.refresh(served)
    return describe_state(model, routing)


def describe_state(model: ModelVersions, routing: Any) -> dict[str, Any]:
    state = model.watched.state
    return {
        "model": model.entry.name,
        "primary": state.primary if state else routing.primary.tag,
        "candidate": state.candidate if state else None,
        "mode": state.mode if state and state.candidate else None,
        "share": state.share if state and state.candidate else 0.0,
        "previous": state.previous if state else None,
        "serving": {
            "primary": routing.primary.tag,
            "candidate": routing.candidate.tag if routing.candidate else None,
            "role": routing.candidate.role if routing.candidate else None,
        },
        "loaded": sorted(routing.loaded),
        "rollout": (
            {"policy": state.rollout, "verdict": model.verdict} if state and state.rollout else None
        ),
        "history": [vars(e) | {} for e in (state.history if state else ())][-20:],
    }


AUTOPILOT = "rollout"  # the ``by`` of automatic decisions


class SupersededError(Exception):
    """The candidate judged is no longer the state's (another front or an admin acted)."""


async def autopilot(model: ModelVersions) -> None:
    """Judge ``model``'s candidate by its rollout policy and act on the verdict: move a shadow
    to canary, promote a canary, or remove a candidate whose figures worsened. Every decision
    is an event in the history with its reasons and figures, and a metric."""
    state, routing = model.watched.state, model.routing
    if state is None or state.candidate is None or state.rollout is None or routing is None:
        return
    if routing.candidate is None or routing.candidate.tag != state.candidate:
        return  # still loading here: nothing of it to judge yet
    policy = RolloutPolicy.model_validate(state.rollout)
    tag, primary = state.candidate, routing.primary.tag
    verdict = judge(policy, routing.candidate.role, model.figures(tag), model.figures(primary))
    model.verdict = {"action": verdict.action, "reasons": list(verdict.reasons), "at": now()}
    if verdict.action == "wait":
        return
    detail = {"reasons": list(verdict.reasons), "figures": verdict.figures}

    def change(current: RoutingState) -> RoutingState:
        if current.candidate != tag or current.rollout is None or current.primary != primary:
            raise SupersededError
        event = Event(f"auto_{verdict.action}", tag, AUTOPILOT, now(), detail)
        if verdict.action == "canary":
            return current.changed(event, mode="canary", share=policy.canary_share)
        if verdict.action == "promote":
            detail["replaced"] = current.primary
            return current.changed(
                event, primary=tag, candidate=None, share=0.0, previous=current.primary
            )
        return current.changed(event, candidate=None, share=0.0)

    try:
        await commit(model, change)
    except SupersededError:
        model.reread()
        return
    decided(model.entry.name, tag, verdict.action, verdict.reasons)
