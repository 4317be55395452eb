"""Runner for the iris species classifier."""

import bentoml

from models.tabular.contract import IRIS
from runners.config import RUNNER_SERVICE_CONFIG, configured_tag
from runners.drain import DrainBeforeStop
from runners.tabular import TabularRunner


@bentoml.service(**RUNNER_SERVICE_CONFIG)
class IrisRunner(TabularRunner):
    task = IRIS
    model = bentoml.models.BentoModel(configured_tag(IRIS.name))


IrisRunner.add_asgi_middleware(DrainBeforeStop)
