"""The bundle's stack with no model and no hop: what one request costs before any work.

    bentoml serve scripts.benchmarks.echo_service:Echo

A ``@bentoml.service`` with the front's configuration and middleware (API keys, load shedding,
body guards) and one JSON endpoint that answers its input. ``scripts.benchmarks.bench``
measures it as the floor of the stack.
"""

from __future__ import annotations

import bentoml

from model_bundle.http.access import ApiKeyAuth
from model_bundle.http.guards import BodySizeLimit, UploadGuard
from model_bundle.http.overload import LoadShedding
from model_bundle.schemas import CreditFeatures
from model_bundle.settings import settings


@bentoml.service(
    name="echo",
    workers=1,
    traffic={"timeout": settings.request_timeout_s},
    tracing=settings.tracing_config(),
)
class Echo:
    @bentoml.api(input_spec=CreditFeatures)
    async def echo(self, **features: float) -> CreditFeatures:
        return CreditFeatures(**features)


Echo.add_asgi_middleware(ApiKeyAuth)
Echo.add_asgi_middleware(LoadShedding)
Echo.add_asgi_middleware(BodySizeLimit)
Echo.add_asgi_middleware(UploadGuard, routes={"/echo": set()})
