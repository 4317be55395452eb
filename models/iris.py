"""Iris species from four flower measurements in centimetres."""

from models import names
from models.task import TabularTask

IRIS = TabularTask(
    name=names.IRIS,
    features=("sepal_length", "sepal_width", "petal_length", "petal_width"),
    labels=("setosa", "versicolor", "virginica"),
    hidden=(16,),
)
