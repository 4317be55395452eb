"""Runner for the iris species classifier."""

from model_bundle.catalogue import IRIS
from runners.base import runner
from runners.tabular import TabularRunner


@runner(IRIS)
class IrisRunner(TabularRunner):
    pass
