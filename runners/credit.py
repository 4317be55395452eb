"""Runner for the company credit-health classifier."""

from model_bundle.catalogue import CREDIT_HEALTH
from runners.base import runner
from runners.tabular import TabularRunner


@runner(CREDIT_HEALTH)
class CreditRunner(TabularRunner):
    pass
