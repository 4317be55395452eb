"""Iris species from four flower measurements in centimetres."""

from models.task import TabularTask

IRIS = TabularTask(
    name="iris",
    features=("sepal_length", "sepal_width", "petal_length", "petal_width"),
    labels=("setosa", "versicolor", "virginica"),
    hidden=(16,),
)
