"""The admin API from a shell: ``python -m model_bundle.admin [--url URL] COMMAND ...``.

    list                                  every model's versions and routing
    candidate MODEL TAG [--mode M] [--share P]   load TAG as MODEL's candidate
    share MODEL PERCENT [--mode M]        set the canary share (or switch mode)
    promote MODEL                         the candidate becomes primary
    rollback MODEL                        the previous primary comes back
    drop MODEL                            remove the candidate

The admin key comes from ``--key`` or the ``BUNDLE_ADMIN_KEY`` environment variable (not a
``MODEL_BUNDLE_`` name: the server refuses unknown variables of its own prefix). A refusal
prints the server's answer and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

TIMEOUT_S = 120  # loading a candidate waits for its load and warm-up


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m model_bundle.admin", description=__doc__)
    top.add_argument("--url", default=os.environ.get("BUNDLE_URL", "http://localhost:3000"))
    top.add_argument("--key", default=os.environ.get("BUNDLE_ADMIN_KEY"))
    top.add_argument("--by", help="who is making the change (default: the key's fingerprint)")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    candidate = commands.add_parser("candidate")
    candidate.add_argument("model")
    candidate.add_argument("tag")
    candidate.add_argument("--mode", choices=("canary", "shadow"), default="shadow")
    candidate.add_argument("--share", type=float, default=0.0)
    share = commands.add_parser("share")
    share.add_argument("model")
    share.add_argument("share", type=float)
    share.add_argument("--mode", choices=("canary", "shadow"))
    for name in ("promote", "rollback", "drop"):
        commands.add_parser(name).add_argument("model")
    return top


def request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any]]:
    """(method, path, body) of the command."""
    body: dict[str, Any] = {"by": args.by} if args.by else {}
    if args.command == "list":
        return "GET", "/admin/models", {}
    base = f"/admin/models/{args.model}"
    if args.command == "candidate":
        body.update(tag=args.tag, mode=args.mode, share=args.share)
        return "POST", f"{base}/candidate", body
    if args.command == "share":
        body["share"] = args.share
        if args.mode:
            body["mode"] = args.mode
        return "POST", f"{base}/share", body
    if args.command == "drop":
        return "DELETE", f"{base}/candidate", body
    return "POST", f"{base}/{args.command}", body


class UnreachableError(RuntimeError):
    """The bundle cannot be asked: not reachable, a refused key, or no such model."""


def served(url: str, key: str | None, model: str) -> dict[str, Any]:
    """What the bundle serves for ``model`` now: its ``/admin/models`` entry (primary,
    candidate, mode, share, rollout, history)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        answer = httpx.get(f"{url}/admin/models", headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as error:
        raise UnreachableError(f"cannot reach {url}: {error}") from None
    if not answer.is_success:
        raise UnreachableError(f"{url}/admin/models answered {answer.status_code}: {answer.text}")
    for entry in answer.json().get("models", []):
        if entry.get("model") == model:
            return entry
    raise UnreachableError(f"{url} serves no model {model}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    method, path, body = request(args)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        answer = httpx.request(
            method, args.url + path, json=body or None, headers=headers, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as error:
        print(f"cannot reach {args.url}: {error}", file=sys.stderr)
        return 2
    try:
        shown = json.dumps(answer.json(), indent=2)
    except ValueError:
        shown = answer.text
    print(shown, file=sys.stdout if answer.is_success else sys.stderr)
    return 0 if answer.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
