"""What a server's start costs in every process: what the service module imports."""

from __future__ import annotations

import json

from tests.support.commands import fresh_python


def modules_after_importing_service(*modules: str) -> dict[str, bool]:
    """Whether each of ``modules`` is loaded once ``service`` is imported, as `bentoml serve`
    imports it before it starts any worker (in a fresh interpreter: this one has them all)."""
    check = (
        "import json, sys, service; "
        f"print(json.dumps([m in sys.modules for m in {list(modules)!r}]))"
    )
    answer = fresh_python(check)
    assert answer.returncode == 0, answer.stderr
    return dict(zip(modules, json.loads(answer.stdout), strict=True))


def test_the_service_module_imports_neither_torch_nor_aiohttp() -> None:
    # torch: only runners load it (in their __init__); aiohttp: only the front calls runners,
    # and BentoML's client imports it there. `bentoml serve` imports service.py alone, before
    # it starts any worker: what it imports delays them all.
    loaded = modules_after_importing_service("torch", "aiohttp", "bentoml")
    assert loaded == {"torch": False, "aiohttp": False, "bentoml": True}
