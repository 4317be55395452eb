"""Runner for the company credit-health classifier."""

import bentoml

from models.tabular.contract import CREDIT
from runners.config import RUNNER_SERVICE_CONFIG, configured_tag
from runners.drain import DrainBeforeStop
from runners.tabular import TabularRunner


@bentoml.service(**RUNNER_SERVICE_CONFIG)
class CreditRunner(TabularRunner):
    task = CREDIT
    model = bentoml.models.BentoModel(configured_tag(CREDIT.name))


CreditRunner.add_asgi_middleware(DrainBeforeStop)
